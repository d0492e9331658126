"""Duplicate clusters from candidate edges, and the deterministic choice of one keeper per cluster.

Both are pure array functions (no I/O, no global state) so any engine can call them on the
gathered edge list: a cluster's id is the smallest row index in it, and the keeper depends only
on the rows' values and ids, never on batch boundaries or worker scheduling.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEEP_POLICIES = ("first", "longest", "max:<column>", "min:<column>")


def connected_components(n_or_ids: int | Sequence | np.ndarray | pa.Array, edges_src: np.ndarray, edges_dst: np.ndarray) -> np.ndarray:
    """Cluster id of every row: the smallest row index in its connected component (int64 [n]).

    `n_or_ids` is the number of rows, or a sequence of row ids (only its length is used; edges
    are row *indices* 0..n-1). Singletons are their own cluster. Linear time (scipy's sparse
    graph components), so a cluster of 10k identical rows costs 10k edges, not 50M pairs.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as _cc

    n = int(n_or_ids) if isinstance(n_or_ids, (int, np.integer)) else len(n_or_ids)
    src = np.asarray(edges_src, dtype=np.int64)
    dst = np.asarray(edges_dst, dtype=np.int64)
    if n == 0:
        return np.zeros(0, np.int64)
    if len(src) == 0:
        return np.arange(n, dtype=np.int64)
    if src.min() < 0 or dst.min() < 0 or src.max() >= n or dst.max() >= n:
        raise ValueError(f"edge endpoints must be row indices in [0, {n})")
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = _cc(graph, directed=False)
    # first index of each label == smallest row index, since indices are scanned in order
    _, first = np.unique(labels, return_index=True)
    return first[labels].astype(np.int64)


def _id_rank(ids: Sequence[str] | pa.Array | np.ndarray | None, n: int) -> np.ndarray:
    if ids is None:
        return np.zeros(n, np.int64)
    arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), pa.string())
    order = pc.sort_indices(arr).to_numpy()
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    # equal ids share a rank so ties fall through to position
    sorted_vals = arr.take(pa.array(order))
    same = pc.equal(sorted_vals.slice(1), sorted_vals.slice(0, n - 1)).fill_null(False).to_numpy(zero_copy_only=False) if n > 1 else np.zeros(0, bool)
    group = np.concatenate([[0], np.cumsum(~same)]) if n else np.zeros(0, np.int64)
    rank[order] = group
    return rank


def choose_keepers(
    clusters: np.ndarray,
    policy: str = "first",
    *,
    ids: Sequence[str] | pa.Array | None = None,
    length: np.ndarray | None = None,
    value: np.ndarray | None = None,
    priority: np.ndarray | None = None,
) -> np.ndarray:
    """Row index of the keeper of each row's cluster (int64 [n]; a row is kept iff keeper == index).

    Policies: ``first`` (smallest row index, i.e. first in input order), ``longest`` (largest
    `length`), ``max:<column>`` / ``min:<column>`` (largest / smallest `value`; nulls/NaN lose).
    Ties are broken by id (smallest string), then by row index, so the result is deterministic.
    `priority` (higher wins, before the policy) lets rows of a saved index always win over new rows.
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    n = len(clusters)
    pos = np.arange(n, dtype=np.int64)
    if n == 0:
        return pos
    if policy == "first" and priority is None:
        # cluster ids are the smallest row index of each cluster: that row is the first one
        first_of = np.full(int(clusters.max()) + 1, n, np.int64)
        np.minimum.at(first_of, clusters, pos)
        return first_of[clusters]
    if policy == "first":
        score = np.zeros(n)
        rank = np.zeros(n, np.int64)
    else:
        if policy == "longest":
            if length is None:
                raise ValueError("keep policy 'longest' needs `length`")
            score = -np.asarray(length, dtype=np.float64)
        elif policy.startswith(("max:", "min:")):
            if value is None:
                raise ValueError(f"keep policy {policy!r} needs `value`")
            v = np.asarray(value, dtype=np.float64)
            v = np.where(np.isnan(v), -np.inf if policy.startswith("max:") else np.inf, v)
            score = -v if policy.startswith("max:") else v
        else:
            raise ValueError(f"keep policy must be one of {', '.join(KEEP_POLICIES)}, got {policy!r}")
        rank = _id_rank(ids, n)
    prio = np.zeros(n) if priority is None else -np.asarray(priority, dtype=np.float64)
    order = np.lexsort((pos, rank, score, prio, clusters))
    sc = clusters[order]
    first = np.concatenate([[True], sc[1:] != sc[:-1]])
    keeper_of = np.empty(n, np.int64)
    keeper_of[sc[first]] = order[first]
    return keeper_of[clusters]


def cluster_sizes(clusters: np.ndarray) -> np.ndarray:
    """Size of each row's cluster (int64 [n])."""
    clusters = np.asarray(clusters, dtype=np.int64)
    if len(clusters) == 0:
        return clusters
    return np.bincount(clusters, minlength=int(clusters.max()) + 1)[clusters].astype(np.int64)


def local_clusters(clusters: np.ndarray, offset: int) -> np.ndarray:
    """For rows [offset:] (this run's rows after `offset` rows of a saved index), the cluster id
    as the smallest *this-run* position in the same cluster (so ids never point into the index)."""
    tail = np.asarray(clusters[offset:], dtype=np.int64)
    if len(tail) == 0:
        return tail
    _, first, inverse = np.unique(tail, return_index=True, return_inverse=True)
    return first[inverse].astype(np.int64)

"""Locality-sensitive hashing over MinHash signatures: band parameters, band keys, candidate edges.

Batch-level pure functions (a distributed engine can shard them by band):

    optimal_bands(threshold, num_perm)     -> (bands, rows), the same choice as datasketch
    band_hashes(sigs, bands, rows)         -> uint64 [n, bands], one bucket key per band
    bucket_edges(keys, row_ids)            -> (src, dst) edges linking each bucket to its first row

Why star edges instead of all pairs: a bucket holding k identical documents would give
k*(k-1)/2 pairs (50 million for 10k copies); linking every member to the bucket's first member
gives k-1 edges and exactly the same connected components.
"""
from __future__ import annotations

import numpy as np

from instructkit.ops.dedup.hashing import fmix64

_Q_BAND = np.uint64(0x9FB21C651E98DF25)


def _weighted_error(threshold: float, num_perm: int, fp_weight: float, fn_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted false-positive + false-negative area for every (b, r) with b*r <= num_perm.

    The integrands 1-(1-s^r)^b are polynomials of degree b*r <= num_perm, so Gauss-Legendre with
    num_perm//2+1 nodes integrates them exactly (up to float rounding).
    """
    deg = max(num_perm // 2 + 2, 16)
    nodes, weights = np.polynomial.legendre.leggauss(deg)
    bs, rs = [], []
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            bs.append(b)
            rs.append(r)
    b_arr = np.array(bs, dtype=np.float64)[:, None]
    r_arr = np.array(rs, dtype=np.float64)[:, None]

    def area(lo: float, hi: float, f) -> np.ndarray:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2
        return (f(s[None, :]) * weights[None, :]).sum(axis=1) * (hi - lo) / 2

    collide = lambda s: 1 - (1 - s**r_arr) ** b_arr  # noqa: E731
    fp = area(0.0, threshold, collide)
    fn = area(threshold, 1.0, lambda s: 1 - collide(s))
    return np.array(bs), np.array(rs), fp * fp_weight + fn * fn_weight


def optimal_bands(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimizing the weighted false-positive/false-negative probability mass for
    `threshold`: the optimizer datasketch's MinHashLSH uses, so both pick the same parameters."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if num_perm < 2:
        raise ValueError(f"num_perm must be >= 2, got {num_perm}")
    bs, rs, err = _weighted_error(threshold, num_perm, false_positive_weight, false_negative_weight)
    best = int(np.argmin(err))  # first minimum in (b, r) order, like datasketch's strict '<'
    return int(bs[best]), int(rs[best])


def collision_probability(similarity: float | np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Probability that two documents with this Jaccard similarity share at least one band."""
    s = np.asarray(similarity, dtype=np.float64)
    return 1 - (1 - s**rows) ** bands


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 bucket key per band: uint64 [n, bands] from uint32 signatures [n, num_perm].

    Band j covers signature slots [j*rows, (j+1)*rows) (datasketch's layout). Two documents
    share band j's key iff those slots are equal (up to a 2**-64 hash collision).
    """
    sigs = np.asarray(sigs)
    if sigs.ndim != 2 or bands * rows > sigs.shape[1]:
        raise ValueError(f"need signatures [n, >= {bands * rows}], got shape {sigs.shape}")
    block = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    acc = np.zeros((len(sigs), bands), dtype=np.uint64)
    for k in range(rows):
        acc = acc * _Q_BAND + block[:, :, k]
    return fmix64(acc ^ np.uint64(rows))


def bucket_edges(keys: np.ndarray, row_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edges (src, dst) linking every row of a bucket to the bucket's first row (by row id).

    `keys` is one band's uint64 key per row; `row_ids` (default 0..n-1) are the ids the edges use.
    Rows with a unique key produce no edge. O(n log n), O(n) memory, linear in bucket size.
    """
    keys = np.asarray(keys)
    ids = np.arange(len(keys), dtype=np.int64) if row_ids is None else np.asarray(row_ids, dtype=np.int64)
    if len(keys) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # by key, then id (the bucket root is its smallest id); a stable radix argsort is ~5x
    # faster than lexsort, so sort by id only when ids are not already ascending
    if len(ids) > 1 and np.any(ids[1:] < ids[:-1]):
        order = np.lexsort((ids, keys))
    else:
        order = np.argsort(keys, kind="stable")
    sk = keys[order]
    starts = np.concatenate([[True], sk[1:] != sk[:-1]])
    group = np.cumsum(starts) - 1
    root = ids[order][starts][group]
    member = ~starts
    return ids[order][member], root[member]


def candidate_edges(band_keys: np.ndarray, row_ids: np.ndarray | None = None, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Union of `bucket_edges` over every band of band_keys [n, bands] (or [bands, n] memmap
    via ``band_keys.T``), deduplicated. `valid` masks rows that must never be candidates
    (e.g. empty documents, whose all-max signatures would all collide)."""
    n = band_keys.shape[0]
    ids = np.arange(n, dtype=np.int64) if row_ids is None else np.asarray(row_ids, dtype=np.int64)
    sel = np.arange(n) if valid is None else np.flatnonzero(valid)
    srcs, dsts = [], []
    for j in range(band_keys.shape[1]):
        s, d = bucket_edges(np.asarray(band_keys[sel, j]), ids[sel])
        srcs.append(s)
        dsts.append(d)
    return dedup_edges(np.concatenate(srcs) if srcs else np.zeros(0, np.int64),
                       np.concatenate(dsts) if dsts else np.zeros(0, np.int64))


def dedup_edges(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges, each as (larger id, smaller id)."""
    if len(src) == 0:
        return src.astype(np.int64), dst.astype(np.int64)
    a = np.maximum(src, dst)
    b = np.minimum(src, dst)
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]

"""Distributed strategies for the dedup barriers on Ray, built from the operators' pure functions.

Both strategies decide exactly what the operator's own `fit` decides (same clusters, same keeper,
same annotation columns, same reject details), but split the work the way a cluster needs:

exact_dedup
  1. map_batches: key text -> 128-bit fingerprint, plus what the keep policy needs (per row);
  2. shuffle: rows grouped by `fingerprint % P` (`groupby(...).map_groups`), each group clusters
     its rows and picks keepers with `clusters.choose_keepers`;
  3. only rows of clusters with duplicates come back to the driver, which broadcasts them.
minhash_dedup
  1. map_batches: key text -> `minhash` signature -> `lsh.band_hashes` (per row);
  2. shuffle: (band, bucket key, row) triples grouped by `bucket key % P`; each group emits star
     edges with `lsh.bucket_edges`;
  3. `verify`: signature similarity of each candidate pair on the driver (signatures of rows that
     have an edge only); `exact` first has tasks build the shingle sets of those rows;
  4. on the driver: `clusters.connected_components` over the candidate edges (only rows that have
     an edge take part, so memory ~ duplicates, not rows), `choose_keepers`, similarity to keeper.
Then every batch gets its decision in a map_batches task (`_Decider.process`), which looks its
rows up in the broadcast tables by `_rowpos`.

Positions: the local operators number rows 0..n-1 in the order their `fit` sees them
(`dup_cluster` is "position of the cluster's first row"). On Ray that order is `_rowpos` order
(see ray_tasks), and the driver broadcasts the sorted `_rowpos` array of the barrier's input so
each task turns `_rowpos` into the same dense position (8 bytes per row in the object store).

Not distributed (the engine falls back to the operator's own fit/process on the driver, and says
so in the manifest): `index_in`/`index_out` (incremental dedup against saved indexes).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from instructkit.engine.ray_tasks import ROWPOS
from instructkit.ops.base import Decision, Operator

#: Rows per shuffle group: bounds the memory one group's task needs (~24 bytes per row).
GROUP_ROWS = 2_000_000

_CACHE: dict[str, Any] = {}


def _fetch(ref) -> Any:
    """ray.get once per worker process: broadcast tables are shared, not re-shipped per batch."""
    import ray

    key = ref.hex()
    if key not in _CACHE:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = ray.get(ref)
    return _CACHE[key]


def strategy_for(op: Operator) -> Callable[..., tuple[Operator, dict[str, Any]]] | None:
    """The distributed strategy for a barrier operator, or None (-> fallback on the driver)."""
    if op.name == "exact_dedup" and not op.index_in and not op.index_out:
        return exact_strategy
    if op.name == "minhash_dedup" and not op.index_in and not op.index_out and op.verify in ("none", "signature", "exact"):
        return minhash_strategy
    return None


def _partitions(total_rows: int) -> int:
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(2 * cpus, math.ceil(total_rows / GROUP_ROWS))


def _column_np(ds, column: str, dtype) -> np.ndarray:
    parts = [np.asarray(b[column]) for b in ds.iter_batches(batch_format="numpy", batch_size=None)
             if column in b and len(b[column])]
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _table(ds) -> pa.Table:
    parts = [b for b in ds.iter_batches(batch_format="pyarrow", batch_size=None) if b.num_rows]
    return pa.concat_tables(parts) if parts else pa.table({})


@dataclass
class _Broadcast:
    """What every decision task needs: sorted `_rowpos` of the barrier input and the duplicate rows."""

    positions: Any  # ObjectRef -> int64 [n] sorted _rowpos of every row entering the barrier
    dups: Any  # ObjectRef -> pa.Table sorted by _rowpos: rows of clusters with more than one row


class _Decider(Operator):
    """Stands in for a dedup operator in the decision tasks (same name, same columns, same reasons)."""

    kind = "barrier"

    def __init__(self, name: str, reason: str, columns: dict[str, tuple[str, pa.DataType]], detail_fields: list[str],
                 broadcast: _Broadcast):
        """`columns`: output column -> (role, type), role one of cluster / size / similarity, in the
        order the operator appends them."""
        self.name = name
        self.reason = reason
        self.columns = columns
        self.detail_fields = detail_fields
        self.broadcast = broadcast

    def config(self) -> dict[str, Any]:
        return {}

    def process(self, batch: pa.Table) -> Decision:
        from instructkit.ops.dedup.rows import json_details

        positions = _fetch(self.broadcast.positions)
        dups: pa.Table = _fetch(self.broadcast.dups)
        rowpos = batch.column(ROWPOS).to_numpy()
        dense = np.searchsorted(positions, rowpos)
        n = batch.num_rows
        dup_pos = dups.column(ROWPOS).to_numpy() if dups.num_rows else np.zeros(0, np.int64)
        at = np.searchsorted(dup_pos, rowpos)
        at_c = np.minimum(at, max(len(dup_pos) - 1, 0))
        member = (at < len(dup_pos)) & (dup_pos[at_c] == rowpos) if len(dup_pos) else np.zeros(n, bool)
        idx = at_c[member]
        cluster = dense.astype(np.int64).copy()
        size = np.ones(n, np.int64)
        keep = np.ones(n, bool)
        if member.any():
            cluster[member] = np.searchsorted(positions, dups.column("root").to_numpy()[idx])
            size[member] = dups.column("size").to_numpy()[idx]
            keep[member] = dups.column("keep").to_numpy(zero_copy_only=False)[idx]
        sim = np.ones(n, np.float32)
        if member.any() and "similarity" in dups.column_names:
            sim[member] = dups.column("similarity").to_numpy()[idx]
        by_role = {"cluster": cluster, "size": size, "similarity": sim}
        out = batch
        for col, (role, typ) in self.columns.items():
            arr = pa.array(by_role[role], typ)
            if col in out.column_names:
                out = out.set_column(out.schema.get_field_index(col), col, arr)
            else:
                out = out.append_column(col, arr)
        detail = np.full(n, None, dtype=object)
        drop = np.flatnonzero(~keep)
        if len(drop):
            kept_id = dups.column("kept_id").take(pa.array(idx[np.searchsorted(np.flatnonzero(member), drop)]))
            fields: dict[str, Any] = {"cluster": cluster[drop], "cluster_size": size[drop], "kept_id": kept_id}
            if "similarity" in self.detail_fields:
                fields["similarity"] = np.round(sim[drop].astype(np.float64), 4)
            fields["kept_from_index"] = np.zeros(len(drop), bool)
            detail[drop] = json_details(fields, np.arange(len(drop))).to_numpy(zero_copy_only=False)
        return Decision.from_mask(out, keep, self.reason, detail)


# ---------------------------------------------------------------------------------- exact dedup
def _exact_keys(batch: pa.Table, op: Operator, parts: int) -> pa.Table:
    import pyarrow.compute as pc

    from instructkit.ops.dedup import common
    from instructkit.ops.dedup.hashing import text_fingerprints

    text = op.key_text(batch.column("messages"))
    fp = text_fingerprints(text)
    valid = pc.greater(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)
    length, value = common.keep_inputs(op.name, op.keep, batch)
    cols = {ROWPOS: batch.column(ROWPOS), "id": batch.column("id").cast(pa.string()),
            "fp0": pa.array(fp[:, 0]), "fp1": pa.array(fp[:, 1]),
            "part": pa.array((fp[:, 0] % np.uint64(parts)).astype(np.int64))}
    if length is not None:
        cols["length"] = pa.array(length, pa.int64())
    if value is not None:
        cols["value"] = pa.array(value, pa.float64())
    table = pa.table(cols)
    return table.filter(pa.array(valid))  # rows with an empty key are never duplicates


def _exact_group(group: pa.Table, keep_policy: str) -> pa.Table:
    """One shuffle group: cluster rows by fingerprint, pick keepers; return rows of real clusters."""
    from instructkit.ops.dedup.clusters import choose_keepers, cluster_sizes
    from instructkit.ops.dedup.exact import exact_clusters

    group = group.sort_by(ROWPOS)  # local index order == input order, as in the local fit
    fp = np.stack([group.column("fp0").to_numpy(), group.column("fp1").to_numpy()], axis=1)
    clusters = exact_clusters(fp)
    return _cluster_rows(group, clusters, keep_policy, cluster_sizes, choose_keepers, similarity=None)


def _cluster_rows(group: pa.Table, clusters: np.ndarray, keep_policy: str, cluster_sizes, choose_keepers,
                  similarity: np.ndarray | None) -> pa.Table:
    size = cluster_sizes(clusters)
    length = group.column("length").to_numpy() if "length" in group.column_names else None
    value = group.column("value").to_numpy() if "value" in group.column_names else None
    ids = group.column("id").combine_chunks()
    keeper = choose_keepers(clusters, keep_policy, ids=ids, length=length, value=value)
    sel = np.flatnonzero(size > 1)
    pos = group.column(ROWPOS).to_numpy()
    cols = {
        ROWPOS: pa.array(pos[sel], pa.int64()),
        "root": pa.array(pos[clusters[sel]], pa.int64()),
        "size": pa.array(size[sel], pa.int64()),
        "keep": pa.array(keeper[sel] == sel),
        "kept_id": ids.take(pa.array(keeper[sel])),
    }
    if similarity is not None:
        cols["similarity"] = pa.array(similarity[sel], pa.float32())
    return pa.table(cols)


def _positions(mat) -> np.ndarray:
    pos = _column_np(mat.select_columns([ROWPOS]), ROWPOS, np.int64)
    if len(pos) > 1 and np.any(pos[1:] <= pos[:-1]):  # never expected: order is preserved
        from instructkit.errors import InvariantError

        raise InvariantError("ray engine: rows reached a barrier out of input order")
    return pos


def exact_strategy(op: Operator, mat, cfg) -> tuple[Operator, dict[str, Any]]:
    import ray

    t0 = time.perf_counter()
    positions = _positions(mat)
    parts = _partitions(len(positions))
    keys = mat.map_batches(_exact_keys, fn_kwargs={"op": op, "parts": parts}, batch_size=cfg.engine.batch_size,
                           batch_format="pyarrow").materialize()
    t1 = time.perf_counter()
    dups = keys.groupby("part", num_partitions=min(parts, 200)).map_groups(
        _exact_group, fn_kwargs={"keep_policy": op.keep}, batch_format="pyarrow")
    table = _table(dups)
    table = table.sort_by(ROWPOS) if table.num_rows else _empty_dups(False)
    decider = _Decider(op.name, "exact_duplicate", {"exact_dup_cluster": ("cluster", pa.int64()), "exact_dup_count": ("size", pa.int64())},
                       ["cluster", "cluster_size", "kept_id", "kept_from_index"],
                       _Broadcast(ray.put(positions), ray.put(table)))
    info = {"strategy": "fingerprint groupby", "partitions": parts, "rows": int(len(positions)),
            "rows_in_duplicate_clusters": int(table.num_rows), "shuffle_rows": int(keys.count()),
            "shuffle_bytes": int(keys.size_bytes()), "broadcast_bytes": int(positions.nbytes + table.nbytes),
            "seconds_keys": round(t1 - t0, 3), "seconds_shuffle_clusters": round(time.perf_counter() - t1, 3)}
    return decider, info


def _empty_dups(with_similarity: bool) -> pa.Table:
    cols = {ROWPOS: pa.array([], pa.int64()), "root": pa.array([], pa.int64()), "size": pa.array([], pa.int64()),
            "keep": pa.array([], pa.bool_()), "kept_id": pa.array([], pa.string())}
    if with_similarity:
        cols["similarity"] = pa.array([], pa.float32())
    return pa.table(cols)


# -------------------------------------------------------------------------------- MinHash dedup
def _minhash_signatures(batch: pa.Table, op: Operator) -> pa.Table:
    from instructkit.ops.dedup import common
    from instructkit.ops.dedup.minhash import signatures_from_hashes

    h, off = op.batch_hashes(batch)
    sigs = signatures_from_hashes(h, off, op.num_perm, op.seed)
    length, value = common.keep_inputs(op.name, op.keep, batch)
    cols = {ROWPOS: batch.column(ROWPOS), "id": batch.column("id").cast(pa.string()),
            "valid": pa.array(np.diff(off) > 0),
            "sig": pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * op.num_perm), len(sigs),
                                                        [None, pa.py_buffer(np.ascontiguousarray(sigs).tobytes())])}
    if length is not None:
        cols["length"] = pa.array(length, pa.int64())
    if value is not None:
        cols["value"] = pa.array(value, pa.float64())
    return pa.table(cols)


def _sig_matrix(col, num_perm: int) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.zeros((0, num_perm), np.uint32)
    buf = arr.buffers()[1]
    flat = np.frombuffer(buf, dtype=np.uint32, count=(arr.offset + len(arr)) * num_perm)
    return flat.reshape(-1, num_perm)[arr.offset:]


def _band_rows(batch: pa.Table, op: Operator, parts: int) -> pa.Table:
    """(part, band, key, _rowpos) for every band of every row that has shingles: the shuffled data."""
    from instructkit.ops.dedup.lsh import band_hashes

    valid = batch.column("valid").to_numpy(zero_copy_only=False)
    sub = batch.filter(pa.array(valid))
    sigs = _sig_matrix(sub.column("sig"), op.num_perm)
    keys = band_hashes(sigs, op.bands, op.rows)  # [n, bands]
    n = len(keys)
    pos = sub.column(ROWPOS).to_numpy()
    band = np.tile(np.arange(op.bands, dtype=np.int16), n)
    flat = keys.reshape(-1)
    return pa.table({"part": pa.array((flat % np.uint64(parts)).astype(np.int64)), "band": pa.array(band),
                     "key": pa.array(flat), ROWPOS: pa.array(np.repeat(pos, op.bands), pa.int64())})


def _bucket_group(group: pa.Table) -> pa.Table:
    """One shuffle group: star edges of every bucket (per band) it holds."""
    from instructkit.ops.dedup.lsh import bucket_edges

    band = group.column("band").to_numpy()
    key = group.column("key").to_numpy()
    pos = group.column(ROWPOS).to_numpy()
    srcs, dsts = [], []
    for b in np.unique(band):
        sel = band == b
        s, d = bucket_edges(key[sel], pos[sel])
        srcs.append(s)
        dsts.append(d)
    src = np.concatenate(srcs) if srcs else np.zeros(0, np.int64)
    dst = np.concatenate(dsts) if dsts else np.zeros(0, np.int64)
    return pa.table({"src": pa.array(src, pa.int64()), "dst": pa.array(dst, pa.int64())})


def _member_shingle_sets(batch: pa.Table, op: Operator, members_ref) -> pa.Table:
    """Deduplicated shingle-hash set of each member row (for `verify: exact`), as list<uint32>."""
    from instructkit.ops.dedup.verify import unique_sets

    sub = _select_members(batch, members_ref)
    if sub.num_rows == 0:
        return pa.table({ROWPOS: pa.array([], pa.int64()), "shingles": pa.array([], pa.list_(pa.uint32()))})
    h, off = op.batch_hashes(sub)
    values, offsets = unique_sets(h, off)
    sets = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values.astype(np.uint32)))
    return pa.table({ROWPOS: sub.column(ROWPOS), "shingles": sets})


def _select_members(batch: pa.Table, members_ref) -> pa.Table:
    members = _fetch(members_ref)
    pos = batch.column(ROWPOS).to_numpy()
    return batch.filter(pa.array(np.isin(pos, members, assume_unique=True)))


def minhash_strategy(op: Operator, mat, cfg) -> tuple[Operator, dict[str, Any]]:
    import ray

    from instructkit.ops.dedup.clusters import choose_keepers, cluster_sizes, connected_components
    from instructkit.ops.dedup.lsh import dedup_edges
    from instructkit.ops.dedup.verify import signature_similarity

    bs = cfg.engine.batch_size
    t0 = time.perf_counter()
    positions = _positions(mat)
    sig_ds = mat.map_batches(_minhash_signatures, fn_kwargs={"op": op}, batch_size=bs,
                             batch_format="pyarrow").materialize()
    parts = _partitions(len(positions) * op.bands)
    bands = sig_ds.map_batches(_band_rows, fn_kwargs={"op": op, "parts": parts}, batch_size=bs,
                               batch_format="pyarrow").materialize()
    t1 = time.perf_counter()
    edges = _table(bands.groupby("part", num_partitions=min(parts, 200)).map_groups(_bucket_group,
                                                                                   batch_format="pyarrow"))
    t2 = time.perf_counter()
    src = edges.column("src").to_numpy() if edges.num_rows else np.zeros(0, np.int64)
    dst = edges.column("dst").to_numpy() if edges.num_rows else np.zeros(0, np.int64)
    src, dst = dedup_edges(src, dst)
    n_candidates = len(src)
    members = np.unique(np.concatenate([src, dst])) if len(src) else np.zeros(0, np.int64)
    info = {"strategy": "band-bucket groupby + driver connected components", "partitions": parts,
            "rows": int(len(positions)), "bands": op.bands, "rows_per_band": op.rows,
            "candidate_edges": int(n_candidates), "shuffle_rows": int(bands.count()),
            "shuffle_bytes": int(bands.size_bytes()), "signature_bytes": int(sig_ds.size_bytes()),
            "seconds_signatures_bands": round(t1 - t0, 3), "seconds_shuffle_edges": round(t2 - t1, 3)}
    if len(members) == 0:
        table = _empty_dups(True)
    else:
        mref = ray.put(members)
        rows = _table(sig_ds.map_batches(_select_members, fn_kwargs={"members_ref": mref}, batch_size=bs,
                                         batch_format="pyarrow")).sort_by(ROWPOS)
        sigs = _sig_matrix(rows.column("sig"), op.num_perm)
        get_sigs = lambda idx: sigs[np.asarray(idx, dtype=np.int64)]  # noqa: E731
        s_loc = np.searchsorted(members, src)
        d_loc = np.searchsorted(members, dst)
        if op.verify != "none" and len(s_loc):
            sim = signature_similarity(get_sigs, s_loc, d_loc)
            if op.verify == "exact":
                sim = _exact_jaccard_of_edges(mat, op, mref, s_loc, d_loc, bs)
            ok = sim >= op.threshold
            s_loc, d_loc = s_loc[ok], d_loc[ok]
        clusters = connected_components(len(members), s_loc, d_loc)
        size = cluster_sizes(clusters)
        length = rows.column("length").to_numpy() if "length" in rows.column_names else None
        value = rows.column("value").to_numpy() if "value" in rows.column_names else None
        keeper = choose_keepers(clusters, op.keep, ids=rows.column("id").combine_chunks(), length=length, value=value)
        similarity = np.ones(len(members), np.float32)
        drop = np.flatnonzero(keeper != np.arange(len(members)))
        if len(drop):
            similarity[drop] = signature_similarity(get_sigs, drop, keeper[drop])
        group = rows.select([ROWPOS, "id"] + [c for c in ("length", "value") if c in rows.column_names])
        table = _cluster_rows_known(group, clusters, size, keeper, similarity)
        info["verified_edges"] = int(len(s_loc))
        info["rows_in_duplicate_clusters"] = int(table.num_rows)
        info["driver_signature_bytes"] = int(sigs.nbytes)
    info["seconds_components_keepers"] = round(time.perf_counter() - t2, 3)
    info["broadcast_bytes"] = int(positions.nbytes + table.nbytes)
    decider = _Decider(op.name, "near_duplicate",
                       {"dup_cluster": ("cluster", pa.int64()), "dup_cluster_size": ("size", pa.int64()),
                        "dup_similarity": ("similarity", pa.float32())},
                       ["cluster", "cluster_size", "kept_id", "similarity", "kept_from_index"],
                       _Broadcast(ray.put(positions), ray.put(table)))
    return decider, info


def _exact_jaccard_of_edges(mat, op: Operator, members_ref, a: np.ndarray, b: np.ndarray, bs: int) -> np.ndarray:
    """True Jaccard of every candidate pair: shingle sets of member rows are built by tasks, the
    pairs are compared on the driver (memory ~ shingles of rows that have an edge)."""
    from instructkit.ops.dedup.verify import exact_jaccard

    sets = _table(mat.map_batches(_member_shingle_sets, fn_kwargs={"op": op, "members_ref": members_ref},
                                  batch_size=bs, batch_format="pyarrow")).sort_by(ROWPOS)
    col = sets.column("shingles").combine_chunks()
    values = col.flatten().to_numpy().astype(np.uint32)
    lengths = pa.compute.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return exact_jaccard(values, offsets, a, b)


def _cluster_rows_known(group: pa.Table, clusters: np.ndarray, size: np.ndarray, keeper: np.ndarray,
                        similarity: np.ndarray) -> pa.Table:
    sel = np.flatnonzero(size > 1)
    pos = group.column(ROWPOS).to_numpy()
    ids = group.column("id").combine_chunks()
    return pa.table({
        ROWPOS: pa.array(pos[sel], pa.int64()),
        "root": pa.array(pos[clusters[sel]], pa.int64()),
        "size": pa.array(size[sel], pa.int64()),
        "keep": pa.array(keeper[sel] == sel),
        "kept_id": ids.take(pa.array(keeper[sel])),
        "similarity": pa.array(similarity[sel], pa.float32()),
    })

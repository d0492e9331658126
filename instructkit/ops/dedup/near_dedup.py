"""`minhash_dedup`: near-duplicate removal with MinHash + LSH, explainable and memory-bounded.

fit() runs the stages of the module-level functions, one after the other:
  1. per batch (thread pool; numpy/Arrow release the GIL): key text -> `minhash.signatures`
     -> `lsh.band_hashes`; signatures and band keys are appended to files in a work directory
     (uint32 [n, num_perm] and one uint64 [n] file per band), never kept whole in RAM;
  2. per band: read its key file, `lsh.bucket_edges` (star edges, linear in bucket size);
  3. optional verification of the edges (`verify.py`);
  4. `clusters.connected_components` + `clusters.choose_keepers` (deterministic);
  5. estimated similarity of each dropped row to its keeper, for the reject detail.
Memory: ~ (8 * bands + 40) bytes per row of heap plus per-batch temporaries; signatures
stay in the page cache (see docs/dedup.md).
"""
from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from instructkit.errors import ConfigError
from instructkit.ops.base import BatchSource, Decision, Operator, register
from instructkit.ops.dedup import common
from instructkit.ops.dedup.clusters import choose_keepers, cluster_sizes, connected_components, local_clusters
from instructkit.ops.dedup.index import load_minhash_index, save_minhash_index
from instructkit.ops.dedup.lsh import band_hashes, bucket_edges, dedup_edges, optimal_bands
from instructkit.ops.dedup.minhash import shingle_hashes, signatures_from_hashes
from instructkit.ops.dedup.normalize_key import dedup_text
from instructkit.ops.dedup.rows import RowDecisions, decide
from instructkit.ops.dedup.verify import exact_jaccard, signature_similarity, unique_sets

VERIFY = ("none", "signature", "exact")


@dataclass
class _BatchResult:
    sigs: np.ndarray
    keys: np.ndarray  # [n, bands]
    has_shingles: np.ndarray
    ids: pa.ChunkedArray
    length: np.ndarray | None
    value: np.ndarray | None


@register
@dataclass
class MinHashDedup(Operator):
    """Drop near-duplicate rows (Jaccard of word n-gram shingles >= threshold), keeping one per cluster.

    Writes `dup_cluster` (position in this step's input of the cluster's first row),
    `dup_cluster_size` and `dup_similarity` (estimated Jaccard to the kept row; 1.0 for keepers).
    Each dropped row's reject detail has cluster, cluster_size, kept_id and similarity.
    Rows with no token (empty key text) are never near-duplicates (exact_dedup handles them).
    """

    name = "minhash_dedup"
    kind = "barrier"
    writes = ("dup_cluster", "dup_cluster_size", "dup_similarity")

    key: str = "user_assistant"
    unicode: str = "NFKC"
    ngram: int = 5
    char_ngrams: bool = False  # character n-grams (CJK and other unsegmented scripts)
    num_perm: int = 128
    seed: int = 1
    threshold: float = 0.8
    bands: int | None = None  # default: datasketch's optimizer for threshold/num_perm (weights below)
    rows: int | None = None
    # Optimizer weights. None = 0.5/0.5 (datasketch's MinHashLSH default) when verify is "none";
    # 0.1/0.9 (favour recall) when candidates are verified, since verification removes the extra
    # false positives: at threshold 0.8 that is 14x9 bands (97.5% of pairs at Jaccard 0.85 collide)
    # instead of 9x13 (69%).
    false_positive_weight: float | None = None
    false_negative_weight: float | None = None
    verify: str = "exact"  # none | signature | exact
    keep: str = "first"  # first | longest | max:<column> | min:<column>
    threads: int = 2
    work_dir: str | None = None  # where signatures/band keys spill (default: a temp dir)
    index_in: str | None = None
    index_out: str | None = None

    def __post_init__(self) -> None:
        common.check_key(self.key)
        common.check_keep(self.name, self.keep)
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {self.ngram}")
        if self.num_perm < 2:
            raise ValueError(f"num_perm must be >= 2, got {self.num_perm}")
        if self.verify not in VERIFY:
            raise ValueError(f"verify must be one of {', '.join(VERIFY)}, got {self.verify!r}")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they are optimized for threshold)")
        if self.bands is None:
            fp_default, fn_default = (0.5, 0.5) if self.verify == "none" else (0.1, 0.9)
            fp = fp_default if self.false_positive_weight is None else self.false_positive_weight
            fn = fn_default if self.false_negative_weight is None else self.false_negative_weight
            self.bands, self.rows = optimal_bands(self.threshold, self.num_perm, fp, fn)
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        self._state: RowDecisions | None = None
        self.stats: dict[str, Any] = {}

    # ------------------------------------------------------------------ batch-level stage
    def key_text(self, messages: pa.ChunkedArray | pa.Array) -> pa.Array:
        """Text shingled for a batch (lowercasing/punctuation are handled by the shingler)."""
        return dedup_text(messages, self.key, lowercase=False, collapse_whitespace=False, unicode=self.unicode)

    def batch_hashes(self, batch: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """CSR shingle hashes of a batch's key texts."""
        return shingle_hashes(self.key_text(batch.column("messages")), self.ngram, self.char_ngrams)

    def _compute(self, batch: pa.Table) -> _BatchResult:
        h, off = self.batch_hashes(batch)
        sigs = signatures_from_hashes(h, off, self.num_perm, self.seed)
        keys = band_hashes(sigs, self.bands, self.rows)
        length, value = common.keep_inputs(self.name, self.keep, batch)
        return _BatchResult(sigs, keys, np.diff(off) > 0, batch.column("id").cast(pa.string()), length, value)

    def _results(self, batches: BatchSource) -> Iterator[_BatchResult]:
        """Per-batch results in input order, computed `threads` batches at a time."""
        if self.threads == 1:
            for b in batches():
                yield self._compute(b)
            return
        with ThreadPoolExecutor(self.threads) as pool:
            pending = []
            for b in batches():
                pending.append(pool.submit(self._compute, b))
                if len(pending) >= 2 * self.threads:
                    yield pending.pop(0).result()
            for f in pending:
                yield f.result()

    def _params(self) -> dict[str, Any]:
        return {"kind": "minhash", "key": self.key, "unicode": self.unicode, "ngram": self.ngram,
                "char_ngrams": self.char_ngrams, "num_perm": self.num_perm, "seed": self.seed,
                "bands": self.bands, "band_rows": self.rows, "hash": "instructkit-affine32-v1"}

    # ------------------------------------------------------------------ fit
    def fit(self, batches: BatchSource) -> None:
        own_dir = self.work_dir is None
        work = Path(tempfile.mkdtemp(prefix="instructkit-minhash-")) if own_dir else Path(self.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        try:
            self._fit(batches, work)
        finally:
            if own_dir:
                shutil.rmtree(work, ignore_errors=True)

    def _fit(self, batches: BatchSource, work: Path) -> None:
        sig_path = work / "signatures.u32"
        band_paths = [work / f"band{j:03d}.u64" for j in range(self.bands)]
        ids, has, lengths, values = [], [], [], []
        n = 0
        with open(sig_path, "wb") as sig_f:
            band_fs = [open(p, "wb") for p in band_paths]
            try:
                for r in self._results(batches):
                    r.sigs.tofile(sig_f)
                    for j, f in enumerate(band_fs):
                        np.ascontiguousarray(r.keys[:, j]).tofile(f)
                    ids.extend(r.ids.chunks)
                    has.append(r.has_shingles)
                    lengths.append(r.length)
                    values.append(r.value)
                    n += len(r.has_shingles)
            finally:
                for f in band_fs:
                    f.close()
        id_arr = pa.chunked_array(ids, pa.string())
        valid_new = np.concatenate(has) if has else np.zeros(0, bool)
        new_sigs = np.memmap(sig_path, dtype=np.uint32, mode="r", shape=(n, self.num_perm)) if n else np.zeros((0, self.num_perm), np.uint32)

        m = 0
        old_ids = pa.chunked_array([], pa.string())
        old_sigs = np.zeros((0, self.num_perm), np.uint32)
        old_bands = None
        if self.index_in:
            old_sigs, old_bands, old_ids = load_minhash_index(self.index_in, self._params())
            m = len(old_sigs)

        def get_sigs(idx: np.ndarray) -> np.ndarray:
            idx = np.asarray(idx, dtype=np.int64)
            out = np.empty((len(idx), self.num_perm), np.uint32)
            old = idx < m
            if old.any():
                out[old] = old_sigs[idx[old]]
            if (~old).any():
                out[~old] = new_sigs[idx[~old] - m]
            return out

        # LSH: one band at a time; old index rows come first (ids 0..m-1)
        valid = np.concatenate([np.ones(m, bool), valid_new])
        sel = np.flatnonzero(valid)
        srcs, dsts = [], []
        for j in range(self.bands):
            keys = np.fromfile(band_paths[j], dtype=np.uint64) if n else np.zeros(0, np.uint64)
            if m:
                keys = np.concatenate([np.asarray(old_bands[j]), keys])
            s, d = bucket_edges(keys[sel], sel)
            if m:  # edges among index rows say nothing about this dataset
                both_old = (s < m) & (d < m)
                s, d = s[~both_old], d[~both_old]
            srcs.append(s)
            dsts.append(d)
        src, dst = dedup_edges(np.concatenate(srcs) if srcs else np.zeros(0, np.int64),
                               np.concatenate(dsts) if dsts else np.zeros(0, np.int64))
        n_candidates = len(src)
        if self.verify != "none" and len(src):
            sim = signature_similarity(get_sigs, src, dst)
            if self.verify == "exact":
                sim = self._exact_similarity(batches, src, dst, m, sim)
            ok = sim >= self.threshold
            src, dst = src[ok], dst[ok]

        total = m + n
        clusters = connected_components(total, src, dst)
        all_ids = pa.chunked_array(list(old_ids.chunks) + list(id_arr.chunks), pa.string())
        length = common.concat_or_none(lengths)
        value = common.concat_or_none(values)
        if m and length is not None:
            length = np.concatenate([np.zeros(m, np.int64), length])
        if m and value is not None:
            value = np.concatenate([np.zeros(m), value])
        priority = np.concatenate([np.ones(m), np.zeros(n)]) if m else None
        keeper = choose_keepers(clusters, self.keep, ids=all_ids.combine_chunks() if total else None,
                                length=length, value=value, priority=priority)
        size = cluster_sizes(clusters)
        pos = np.arange(m, total)
        keep = keeper[m:] == pos
        similarity = np.ones(n, np.float32)
        drop = np.flatnonzero(~keep)
        if len(drop):
            similarity[drop] = signature_similarity(get_sigs, drop + m, keeper[m:][drop])
        local = local_clusters(clusters, m)
        self._state = RowDecisions(
            stage=self.name,
            ids=id_arr,
            keep=keep,
            columns={"dup_cluster": local, "dup_cluster_size": size[m:], "dup_similarity": similarity},
            detail={
                "cluster": local,
                "cluster_size": size[m:],
                "kept_id": all_ids.take(pa.array(keeper[m:])) if n else pa.array([], pa.string()),
                "similarity": np.round(similarity.astype(np.float64), 4),
                "kept_from_index": keeper[m:] < m,
            },
        )
        self.stats = {"rows": n, "index_rows": m, "bands": self.bands, "rows_per_band": self.rows,
                      "candidate_edges": int(n_candidates), "verified_edges": int(len(src)),
                      "clusters_with_duplicates": int(((size > 1) & (clusters == np.arange(total))).sum()),
                      "dropped": int(len(drop))}
        if self.index_out:
            kept_rows = np.flatnonzero(keep)
            rows_all = np.concatenate([np.arange(m), kept_rows + m])
            sigs_out = get_sigs(rows_all)
            save_minhash_index(self.index_out, self._params(), sigs_out,
                               np.ascontiguousarray(band_hashes(sigs_out, self.bands, self.rows).T),
                               pa.chunked_array(list(old_ids.chunks) + [id_arr.take(pa.array(kept_rows))], pa.string()))
        del new_sigs

    def _exact_similarity(self, batches: BatchSource, src: np.ndarray, dst: np.ndarray, m: int,
                          fallback: np.ndarray) -> np.ndarray:
        """True Jaccard for edges between rows of this dataset (one more pass over the data);
        edges touching a saved-index row keep their signature estimate (the index has no text)."""
        need = np.zeros(0, np.int64)
        both_new = (src >= m) & (dst >= m)
        if both_new.any():
            need = np.unique(np.concatenate([src[both_new], dst[both_new]])) - m
        vals, counts, rows = [], [], []
        start = 0
        for batch in batches():
            b = batch.num_rows
            lo, hi = np.searchsorted(need, [start, start + b])
            if hi > lo:
                local = need[lo:hi] - start
                sub = batch.take(pa.array(local))
                h, off = self.batch_hashes(sub)
                u, uoff = unique_sets(h, off)
                vals.append(u)
                counts.append(np.diff(uoff))
                rows.append(need[lo:hi])
            start += b
        sim = fallback.astype(np.float64).copy()
        if not rows:
            return sim
        values = np.concatenate(vals)
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
        where = np.concatenate(rows)  # sorted dataset rows -> CSR slot
        a = np.searchsorted(where, src[both_new] - m)
        b_ = np.searchsorted(where, dst[both_new] - m)
        sim[both_new] = exact_jaccard(values, offsets, a, b_)
        return sim

    # ------------------------------------------------------------------ process
    def process(self, batch: pa.Table) -> Decision:
        if self._state is None:
            raise ConfigError(f"{self.name}: process() called before fit(); it must run as a barrier step")
        types = {"dup_cluster": pa.int64(), "dup_cluster_size": pa.int64(), "dup_similarity": pa.float32()}
        return decide(self._state, batch, "near_duplicate", types)

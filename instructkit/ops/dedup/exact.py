"""`exact_dedup`: drop rows whose normalized key text is identical to an earlier kept row's.

The key text (see normalize_key.py) is reduced to a 128-bit fingerprint, so memory is 16 bytes
per row whatever the text size, and a saved index (fingerprints + ids) lets a later run drop
rows already present in an earlier dataset (incremental mode).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.errors import ConfigError
from instructkit.ops.base import BatchSource, Decision, Operator, register
from instructkit.ops.dedup import common
from instructkit.ops.dedup.clusters import choose_keepers, cluster_sizes, local_clusters
from instructkit.ops.dedup.hashing import text_fingerprints
from instructkit.ops.dedup.index import load_exact_index, save_exact_index
from instructkit.ops.dedup.normalize_key import dedup_text
from instructkit.ops.dedup.rows import RowDecisions, decide


def exact_clusters(fingerprints: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Cluster id (smallest row index with the same fingerprint) per row; invalid rows are singletons."""
    n = len(fingerprints)
    pos = np.arange(n, dtype=np.int64)
    if n == 0:
        return pos
    fp = np.ascontiguousarray(fingerprints)
    order = np.lexsort((pos, fp[:, 1], fp[:, 0]))
    s = fp[order]
    new = np.concatenate([[True], (s[1:] != s[:-1]).any(axis=1)])
    group_first = order[new][np.cumsum(new) - 1]
    clusters = np.empty(n, np.int64)
    clusters[order] = group_first
    if valid is not None:
        clusters = np.where(valid, clusters, pos)
    return clusters


@register
@dataclass
class ExactDedup(Operator):
    """Keep one row per identical normalized key (whole conversation by default).

    Writes `exact_dup_cluster` (row index of the cluster's first row in this step's input) and
    `exact_dup_count` (rows sharing the key). Rows whose key is empty (e.g. no user turn with
    key=first_user) are never treated as duplicates of each other: other filters own them.
    """

    name = "exact_dedup"
    kind = "barrier"
    writes = ("exact_dup_cluster", "exact_dup_count")

    key: str = "conversation"
    lowercase: bool = True
    collapse_whitespace: bool = True
    strip_punctuation: bool = False
    unicode: str = "NFKC"
    keep: str = "first"  # first | longest | max:<column> | min:<column>
    index_in: str | None = None  # dedup against a saved index of an earlier dataset
    index_out: str | None = None  # save this run's kept rows (plus index_in's) as an index

    def __post_init__(self) -> None:
        common.check_key(self.key)
        common.check_keep(self.name, self.keep)
        if self.unicode not in ("NFC", "NFKC", "NFD", "NFKD", "none"):
            raise ValueError(f"unicode must be NFC, NFKC, NFD, NFKD or none, got {self.unicode!r}")
        self._state: RowDecisions | None = None

    def key_text(self, messages: pa.ChunkedArray | pa.Array) -> pa.Array:
        return dedup_text(messages, self.key, lowercase=self.lowercase, collapse_whitespace=self.collapse_whitespace,
                          strip_punctuation=self.strip_punctuation, unicode=self.unicode)

    def fit(self, batches: BatchSource) -> None:
        fps, ids, valid, lengths, values = [], [], [], [], []
        for batch in batches():
            text = self.key_text(batch.column("messages"))
            fps.append(text_fingerprints(text))
            valid.append(pc.greater(pc.binary_length(text), 0).to_numpy(zero_copy_only=False))
            ids.extend(batch.column("id").cast(pa.string()).chunks)
            length, value = common.keep_inputs(self.name, self.keep, batch)
            lengths.append(length)
            values.append(value)
        n = sum(len(f) for f in fps)
        fp = np.concatenate(fps) if fps else np.zeros((0, 2), np.uint64)
        ok = np.concatenate(valid) if valid else np.zeros(0, bool)
        id_arr = pa.chunked_array(ids, pa.string()) if ids else pa.chunked_array([], pa.string())
        length = common.concat_or_none(lengths)
        value = common.concat_or_none(values)

        m = 0
        old_ids = pa.chunked_array([], pa.string())
        if self.index_in:
            old_fp, old_ids = load_exact_index(self.index_in, self._params())
            m = len(old_fp)
            fp = np.concatenate([old_fp, fp])
            ok = np.concatenate([np.ones(m, bool), ok])
            if length is not None:
                length = np.concatenate([np.zeros(m, np.int64), length])
            if value is not None:
                value = np.concatenate([np.zeros(m), value])
        all_ids = pa.chunked_array(list(old_ids.chunks) + list(id_arr.chunks), pa.string())
        clusters = exact_clusters(fp, ok)
        priority = np.concatenate([np.ones(m), np.zeros(n)]) if m else None
        keeper = choose_keepers(clusters, self.keep, ids=all_ids.combine_chunks() if len(all_ids) else None,
                                length=length, value=value, priority=priority)
        size = cluster_sizes(clusters)
        keep = keeper[m:] == np.arange(m, m + n)
        local = local_clusters(clusters, m)
        self._state = RowDecisions(
            stage=self.name,
            ids=id_arr,
            keep=keep,
            columns={"exact_dup_cluster": local, "exact_dup_count": size[m:]},
            detail={
                "cluster": local,
                "cluster_size": size[m:],
                "kept_id": all_ids.take(pa.array(keeper[m:])) if n else pa.array([], pa.string()),
                "kept_from_index": keeper[m:] < m,
            },
        )
        if self.index_out:
            kept_rows = np.flatnonzero(keep)
            save_exact_index(
                self.index_out,
                self._params(),
                np.concatenate([fp[:m], fp[m:][kept_rows]]),
                pa.chunked_array(list(old_ids.chunks) + [id_arr.take(pa.array(kept_rows))], pa.string()),
            )

    def _params(self) -> dict:
        return {"kind": "exact", "key": self.key, "lowercase": self.lowercase,
                "collapse_whitespace": self.collapse_whitespace, "strip_punctuation": self.strip_punctuation,
                "unicode": self.unicode}

    def process(self, batch: pa.Table) -> Decision:
        if self._state is None:
            raise ConfigError(f"{self.name}: process() called before fit(); it must run as a barrier step")
        return decide(self._state, batch, "exact_duplicate", {})

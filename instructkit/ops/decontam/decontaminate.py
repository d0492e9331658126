"""`decontaminate`: drop (or, with annotate_only, flag) rows that contain benchmark text.

A row is contaminated when at least `min_matches` of its word n-grams (default 13-grams, the
GPT-3 / Llama decontamination convention) appear in an indexed benchmark item. The index is
built once per worker in `setup()` from the task files the user lists.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from instructkit.ops.base import Decision, Operator, register
from instructkit.ops.dedup.normalize_key import KEYS, dedup_text
from instructkit.ops.decontam.ngram_index import NgramIndex
from instructkit.ops.decontam.tasks import load_items
from instructkit.ops.dedup.rows import dumps

_INDEX_CACHE: dict[str, NgramIndex] = {}


@register
@dataclass
class Decontaminate(Operator):
    """Reject rows sharing a word n-gram with benchmark prompts/answers.

    Writes `contam_ngrams` (matched n-grams) and `contam_benchmark` (first match, null if none).
    Reject detail: benchmark, item_id, matched n-gram (normalized) and the match count.
    """

    name = "decontaminate"
    kind = "filter"
    writes = ("contam_ngrams", "contam_benchmark")

    benchmarks: list = field(default_factory=lambda: ["builtin:ifeval_sample", "builtin:gsm8k_sample"])
    ngram: int = 13
    min_ngram: int = 10
    min_matches: int = 1
    key: str = "user_assistant"

    def __post_init__(self) -> None:
        if self.key not in KEYS:
            raise ValueError(f"key must be one of {', '.join(KEYS)}, got {self.key!r}")
        if not isinstance(self.benchmarks, list) or not self.benchmarks:
            raise ValueError("benchmarks must be a non-empty list of task files (or builtin:<name>)")
        if self.ngram < 1 or self.min_ngram < 1 or self.min_ngram > self.ngram:
            raise ValueError(f"need 1 <= min_ngram <= ngram, got ngram={self.ngram}, min_ngram={self.min_ngram}")
        if self.min_matches < 1:
            raise ValueError(f"min_matches must be >= 1, got {self.min_matches}")
        self.index: NgramIndex | None = None

    def setup(self) -> None:
        cache_key = dumps({"b": self.benchmarks, "n": self.ngram, "m": self.min_ngram})
        if cache_key not in _INDEX_CACHE:
            _INDEX_CACHE[cache_key] = NgramIndex(load_items(self.benchmarks), self.ngram, self.min_ngram)
        self.index = _INDEX_CACHE[cache_key]

    def stats(self) -> dict[str, Any]:
        idx = self.index
        return {} if idx is None else {"items": len(idx.items), "ngrams": len(idx), "skipped_short_items": idx.skipped}

    def process(self, batch: pa.Table) -> Decision:
        if self.index is None:
            self.setup()
        idx = self.index
        text = dedup_text(batch.column("messages"), self.key, lowercase=False, collapse_whitespace=False, unicode="NFKC")
        m = idx.query(text)
        bad = m.count >= self.min_matches
        bench = np.full(batch.num_rows, None, dtype=object)
        detail = np.full(batch.num_rows, None, dtype=object)
        for row in np.flatnonzero(m.item >= 0):  # only rows with a match: rare, explained one by one
            it = idx.items[int(m.item[row])]
            bench[row] = it.benchmark
            if bad[row]:
                detail[row] = dumps({"benchmark": it.benchmark, "item_id": it.item_id, "matches": int(m.count[row]),
                                     "ngram": idx.ngram_text(int(m.item[row]), int(m.ordinal[row]))})
        out = batch
        for col, arr in (("contam_ngrams", pa.array(m.count, pa.int64())), ("contam_benchmark", pa.array(bench, pa.string()))):
            if col in out.column_names:
                out = out.set_column(out.schema.get_field_index(col), col, arr)
            else:
                out = out.append_column(col, arr)
        return Decision.from_mask(out, ~bad, "benchmark_contamination", detail)

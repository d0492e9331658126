"""Benchmark files in their common layouts become (benchmark, item id, text) items."""
from __future__ import annotations

import gzip
import json

from instructkit.ops.decontam.tasks import load_items


def test_layouts_are_recognized(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text(json.dumps({"question": "Q?", "answer": "A #### 3"}) + "\n\n")
    (tmp_path / "alpaca_eval.json").write_text(json.dumps([{"instruction": "Do X", "output": "Done", "generator": "m"}]))
    with gzip.open(tmp_path / "arc.jsonl.gz", "wt") as f:
        f.write(json.dumps({"query": "Question: why?", "choices": ["a b", "c d"], "gold": 1}) + "\n")
    items = load_items([str(tmp_path / "gsm8k" / "test.jsonl"), str(tmp_path / "alpaca_eval.json"),
                        str(tmp_path / "arc.jsonl.gz"), "builtin:ifeval_sample"])
    by_bench = {}
    for it in items:
        by_bench.setdefault(it.benchmark, []).append((it.item_id, it.text))
    assert by_bench["gsm8k"] == [("1", "Q?"), ("1", "A #### 3")]
    assert by_bench["alpaca_eval"] == [("1", "Do X"), ("1", "Done")]  # generator (a model name) is not indexed
    assert by_bench["arc"] == [("1", "Question: why?"), ("1", "a b"), ("1", "c d")]
    assert by_bench["ifeval_sample"][0][0] == "1000"  # IFEval's `key` is the item id

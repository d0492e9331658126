"""The n-gram index finds shared n-grams (and only those) and reports which one."""
from __future__ import annotations

import pyarrow as pa

from instructkit.ops.decontam.ngram_index import NgramIndex
from instructkit.ops.decontam.tasks import Item


def test_query_counts_and_first_match():
    item = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    idx = NgramIndex([Item("b", "7", item), Item("b", "8", "too short")], ngram=13, min_ngram=8)
    assert idx.skipped == 1 and len(idx) == 2
    m = idx.query(pa.array(["Say: ONE two three four five six seven eight nine ten eleven twelve thirteen!",
                            "one two three four five six seven eight nine ten eleven twelve", item]))
    assert m.count.tolist() == [1, 0, 2]
    assert idx.ngram_text(int(m.item[0]), int(m.ordinal[0])) == " ".join(item.split()[:13])


def test_short_items_match_whole():
    idx = NgramIndex([Item("b", "1", "what is the capital city of france today")], ngram=13, min_ngram=8)
    m = idx.query(pa.array(["Q: What is the capital city of France today? A: Paris", "what is the capital city of"]))
    assert m.count.tolist() == [1, 0]

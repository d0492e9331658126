from __future__ import annotations

import pytest

from instructkit.ops import build
from tests.conftest import make_table

GOOD = ("Plants use sunlight to turn water and carbon dioxide into sugar and oxygen. The sugar feeds the plant, and "
        "the oxygen is released into the air through small pores in the leaves called stomata.")
LOOP = "I think that the answer is yes. " * 20
LINES = "\n".join(["Buy milk", "Buy milk", "Buy milk", "Buy eggs", "Buy milk", "Buy milk"])
SYMBOLS = "!!!!!! ###### $$$$$$ %%%%%% ^^^^^^ &&&&&& ****** (((((( )))))) ~~~~~~ @@@@@@"
URLS = "See https://a.example.com/x/y/z/1 https://b.example.com/x/y/z/2 https://c.example.com/p/q/r/3 ok"


def decide(rows, **opts):
    op, _ = build({"quality_heuristics": opts})
    return op.process(make_table([[("user", u), ("assistant", a)] for u, a in rows]))


def test_scores_and_reasons():
    d = decide([("Explain photosynthesis.", GOOD), ("Say yes.", LOOP), ("List.", LINES),
                ("Symbols?", SYMBOLS), ("Links?", URLS), ("Hi", "Lima.")])
    t = d.table
    assert d.reason.to_pylist() == [None, "repetition", "repeated_lines", "high_symbol_ratio", "high_url_ratio", None]
    rep = t.column("rep_dup_ngram_frac").to_pylist()
    assert rep[0] == 0.0 and rep[1] > 0.8
    assert t.column("rep_dup_line_frac").to_pylist()[2] == pytest.approx(5 / 6)
    assert t.column("hq_assistant_words").to_pylist()[5] == 1
    assert t.column("hq_user_chars").to_pylist()[5] == 2
    assert t.column("hq_stopwords").to_pylist()[0] >= 5
    import json
    assert json.loads(d.detail.to_pylist()[1])["rep_dup_ngram_frac"] > 0.8
    assert d.detail.to_pylist()[0] is None


def test_thresholds_are_options():
    d = decide([("Hi", "Lima."), ("Explain photosynthesis.", GOOD)], min_assistant_chars=10, min_stopwords=2)
    assert d.reason.to_pylist() == ["too_short_assistant", None]
    d = decide([("Hi", "Lima.")], max_user_chars=1)
    assert d.reason.to_pylist() == ["too_long_user"]


def test_empty_and_huge_texts_do_not_crash():
    d = decide([("", ""), ("x", "word " * 200_000)])
    assert d.reason.to_pylist()[0] == "too_short_user"
    assert d.table.column("hq_assistant_words").to_pylist()[1] == 200_000

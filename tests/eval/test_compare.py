"""Comparison table: deltas vs the first run, noise marker, markdown shape."""
from __future__ import annotations

import json

import pytest

from instructkit.errors import DataError
from instructkit.eval.compare import comparison_rows, load_results, to_markdown, to_terminal


def _run(label, acc, se, loss):
    return {"label": label, "results": {"arc_easy": {"metrics": {"acc": acc, "acc_stderr": se}},
                                        "heldout": {"metrics": {"loss": loss, "perplexity": 2.0, "tokens": 9}}}}


def test_rows_and_deltas():
    header, rows = comparison_rows([_run("base", 0.50, 0.01, 2.0), _run("tuned", 0.60, 0.01, 1.5)])
    assert header == ["task", "metric", "base", "tuned"]
    assert rows[0] == ["arc_easy", "acc (%)", "50.00", "60.00 (+10.00)"]
    assert rows[1][:3] == ["heldout", "loss", "2.0000"] and rows[1][3] == "1.5000 (-0.50)"
    assert all(r[1] != "tokens" for r in rows)


def test_small_change_is_marked_as_noise():
    _, rows = comparison_rows([_run("a", 0.50, 0.05, 2.0), _run("b", 0.52, 0.05, 2.0)])
    assert rows[0][3].endswith("~)")


def test_markdown_and_terminal(tmp_path):
    runs = [_run("base", 0.5, 0.01, 2.0), _run("tuned", 0.6, 0.01, 1.5)]
    md = to_markdown(runs)
    assert md.splitlines()[0] == "| task | metric | base | tuned |"
    assert md.splitlines()[1] == "|---|---|---|---|"
    assert "tuned" in to_terminal(runs).splitlines()[0]
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"oops": 1}))
    with pytest.raises(DataError, match="no 'results' key"):
        load_results(p)

"""Every bad input of the issue: a reject row with file, line and reason, or a one-line DataError."""
from __future__ import annotations

import json

import pytest

from instructkit.errors import DataError
from tests.io.conftest import FIXTURES, bad, good, read_all


def test_broken_alpaca_lines_get_exact_lines_and_reasons():
    t = read_all(FIXTURES / "broken_alpaca.jsonl", format="alpaca")
    rows = {r["_line"]: r for r in t.to_pylist()}
    # line 6 is empty and line 9 only spaces: not records, not rejects
    assert sorted(rows) == [1, 2, 3, 4, 5, 7, 8, 10]
    assert rows[1]["_error"] is None and rows[1]["messages"][0]["content"] == "Name a primary color."  # BOM stripped
    line2 = (FIXTURES / "broken_alpaca.jsonl").read_bytes().split(b"\n")[1]
    col = line2.index(b'"output"') + 1  # where the missing comma should have been
    assert rows[2]["_error"] == f"malformed_json: Expecting ',' delimiter (col {col})"
    assert rows[3]["_error"].startswith("invalid_utf8: byte 0xe9")
    assert rows[4]["_error"] == "wrong_type: field 'output': expected string, got number"
    assert rows[5]["_error"] == "missing_field: output"
    assert rows[5]["messages"][0]["content"] == "Write a haiku about rain."  # what could be recovered
    assert rows[7]["_error"].startswith("not_an_object")
    assert rows[8]["_error"] is None and rows[8]["messages"][1]["content"] == "Hi!"  # CRLF line
    assert rows[2]["messages"] == []
    ids = [r["id"] for r in rows.values()]
    assert len(set(ids)) == len(ids) and all(ids)


def test_malformed_line_does_not_lose_its_neighbours(tmp_path):
    recs = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(2000)]
    recs[1234] = recs[1234][:-3]
    p = tmp_path / "one_bad.jsonl"
    p.write_text("\n".join(recs) + "\n")
    t = read_all(p)
    assert len(good(t)) == 1999
    (b,) = bad(t)
    assert b["_line"] == 1235 and b["_error"].startswith("malformed_json")


@pytest.mark.slow
def test_oversized_record_is_rejected_and_limit_is_configurable(tmp_path):
    p = tmp_path / "big.jsonl"
    big = "x" * (50 * 1024 * 1024)
    with open(p, "w") as fh:
        fh.write(json.dumps({"instruction": "small", "output": "ok"}) + "\n")
        fh.write(json.dumps({"instruction": "Summarize.", "output": big}) + "\n")
        fh.write(json.dumps({"instruction": "after", "output": "ok"}) + "\n")
    t = read_all(p, format="alpaca")
    rows = t.to_pylist()
    assert [r["_line"] for r in rows] == [1, 2, 3]
    assert rows[1]["_error"].startswith("oversized_record: 52428") and rows[1]["messages"] == []
    assert rows[0]["_error"] is None and rows[2]["_error"] is None
    t2 = read_all(p, format="alpaca", options={"max_record_bytes": 64 * 1024 * 1024})
    assert not bad(t2) and len(t2.column("messages")[1].as_py()[1]["content"]) == len(big)


def test_empty_and_missing_files_raise_one_line_errors(tmp_path):
    for path, text in [(FIXTURES / "empty.jsonl", "the file is empty"), (tmp_path / "nope.jsonl", "no such file"),
                       (str(tmp_path / "*.jsonl"), "matched no files"), (FIXTURES / "not_really.parquet", "Parquet")]:
        with pytest.raises(DataError) as ei:
            read_all(path)
        assert text in str(ei.value) and "\n" not in str(ei.value)
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    with pytest.raises(DataError, match="empty"):
        read_all(blank)


def test_wrong_format_override_is_a_config_error():
    with pytest.raises(DataError) as ei:
        read_all(FIXTURES / "alpaca_seed.jsonl", format="sharegpt")
    msg = str(ei.value)
    assert "format 'sharegpt' expects field(s) conversations" in msg and "looks like 'alpaca'" in msg


def test_on_error_fail_stops_at_the_first_bad_line():
    with pytest.raises(DataError) as ei:
        read_all(FIXTURES / "broken_alpaca.jsonl", on_error="fail")
    assert "broken_alpaca.jsonl:2: malformed_json: Expecting ',' delimiter" in str(ei.value)


def test_undetectable_format_says_what_to_set(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"question": "a", "answer": "b"}\n')
    with pytest.raises(DataError, match="cannot detect the record format from fields question, answer"):
        read_all(p)


def test_engine_routes_bad_rows_to_rejects(tmp_path):
    """End to end through the local engine: accounting holds and rejects carry file, line, reason."""
    import pyarrow.parquet as pq

    from instructkit import Pipeline

    pipe = Pipeline(steps=[], inputs=[{"path": str(FIXTURES / "broken_alpaca.jsonl"), "name": "broken"},
                                      {"path": str(FIXTURES / "oasst2_trees.jsonl")}], output=tmp_path / "out")
    m = pipe.run(progress=False).manifest
    n_oasst = read_all(FIXTURES / "oasst2_trees.jsonl").num_rows
    assert m["counts"]["read"] == 8 + n_oasst and m["counts"]["read"] == m["counts"]["written"] + m["counts"]["rejected"]
    rej = pq.read_table(tmp_path / "out" / "rejects").to_pylist()
    got = sorted((r["_file"].rsplit("/", 1)[1], r["_line"], r["reason"]) for r in rej)
    assert got == sorted([("broken_alpaca.jsonl", 2, "malformed_json"), ("broken_alpaca.jsonl", 3, "invalid_utf8"),
                          ("broken_alpaca.jsonl", 4, "wrong_type"), ("broken_alpaca.jsonl", 5, "missing_field"),
                          ("broken_alpaca.jsonl", 7, "not_an_object"), ("broken_alpaca.jsonl", 10, "wrong_type"),
                          ("oasst2_trees.jsonl", 3, "empty_conversation")])

"""Containers: the same Alpaca records read from JSONL, gzip, JSON array, CSV, TSV, Parquet,
Arrow IPC and a glob give the same canonical rows; line numbers are the file's lines."""
from __future__ import annotations

import json

import pytest

from instructkit.errors import DataError
from instructkit.io.files import iter_chunks, split_lines
from tests.io.conftest import FIXTURES, bad, good, jsonl, read_all

SOURCE = jsonl(FIXTURES / "alpaca_seed.jsonl")


def expected(rec: dict) -> list[dict]:
    user = rec["instruction"] + ("\n\n" + rec["input"] if rec["input"].strip() else "")
    return [{"role": "user", "content": user}, {"role": "assistant", "content": rec["output"]}]


@pytest.mark.parametrize("name", ["alpaca_seed.jsonl", "alpaca_seed.jsonl.gz", "alpaca_seed.json", "alpaca_seed.csv",
                                  "alpaca_seed.tsv", "alpaca_seed.parquet", "alpaca_seed.arrow"])
def test_every_container_gives_the_same_rows(name):
    t = read_all(FIXTURES / name)
    rows = good(t)
    assert not bad(t)
    n = 5 if name.endswith(".json") else len(SOURCE)
    assert len(rows) == n
    for row, rec in zip(rows, SOURCE):
        assert row["messages"] == expected(rec)
        assert row["id"] == str(rec["id"])  # the source's own id
        assert json.loads(row["meta"]) == {"name": rec["name"]}  # extra fields are kept
        assert row["source"] == "alpaca_seed"
        assert row["_file"].endswith(name)
    first_data_line = 2 if name.endswith((".csv", ".tsv")) else 1
    assert [r["_line"] for r in rows] == list(range(first_data_line, first_data_line + n))


def test_glob_reads_every_file_in_order(tmp_path):
    for i in range(3):
        (tmp_path / f"part-{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in SOURCE[i * 2:i * 2 + 2]))
    t = read_all(str(tmp_path / "part-*.jsonl"), name="parts")
    rows = good(t)
    assert [r["id"] for r in rows] == [r["id"] for r in SOURCE[:6]]
    assert [r["_file"].rsplit("/", 1)[1] for r in rows] == ["part-0.jsonl"] * 2 + ["part-1.jsonl"] * 2 + ["part-2.jsonl"] * 2
    assert {r["source"] for r in rows} == {"parts"}
    t2 = read_all(tmp_path)  # a directory means every data file in it
    assert [r["id"] for r in good(t2)] == [r["id"] for r in rows]


def test_chunks_and_batches_do_not_change_rows(tmp_path):
    """Tiny read chunks and batches must give the same rows and line numbers as one big read."""
    from instructkit.io import InputSpec
    from instructkit.io.files import read_jsonl

    p = tmp_path / "many.jsonl"
    recs = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(300)]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n\n")
    whole = read_all(p)
    small = read_all(p, batch_size=7)
    assert whole.to_pylist() == small.to_pylist()
    assert whole.num_rows == 300 and whole.column("_line").to_pylist() == list(range(1, 301))
    types = {"instruction": __import__("pyarrow").string()}
    tables = list(read_jsonl(p, types, "id", 1 << 20, chunk_bytes=512))
    assert len(tables) > 5
    lines = [x for t in tables for x in t.column("_line").to_pylist()]
    assert lines == list(range(1, 301))
    InputSpec(str(p))  # sanity: the spec accepts a plain path


def test_split_lines_finds_whitespace_only_lines():
    chunk = b'{"a":1}\n\n  \t\n\r\n{"a":2}\n'
    _, _, has = split_lines(chunk, exact=True)
    assert has.tolist() == [True, False, False, False, True]
    _, _, cheap = split_lines(chunk, exact=False)
    assert cheap.tolist() == [True, False, True, False, True]  # spaces/tabs only found by the exact pass


def test_iter_chunks_strips_bom_and_keeps_last_line_without_newline(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}\n{"a": 2}')
    chunks = list(iter_chunks(p, 1 << 20))
    assert b"".join(c for _, c in chunks) == b'{"a": 1}\n{"a": 2}\n'


def test_json_array_syntax_error_is_one_line(tmp_path):
    with pytest.raises(DataError) as ei:
        read_all(FIXTURES / "broken_array.json", format="alpaca")
    msg = str(ei.value)
    assert "broken_array.json:3" in msg and "delimiter" in msg and "\n" not in msg


def test_json_object_with_records_list(tmp_path):
    p = tmp_path / "wrapped.json"
    p.write_text(json.dumps({"data": SOURCE[:2]}))
    assert [r["id"] for r in good(read_all(p))] == [str(r["id"]) for r in SOURCE[:2]]


def test_csv_row_with_wrong_field_count_is_a_reject_with_its_line(tmp_path):
    import csv

    p = tmp_path / "bad.csv"
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["instruction", "input", "output"])
        w.writerow(["Spell cat.", "", "C-A-T"])
        w.writerow(["Two\nlines", "", "ok"])  # a quoted newline: this record spans lines 3-4
        w.writerow(["only", "two"])
        w.writerow(["Last.", "", "Done."])
    t = read_all(p)
    rows = t.to_pylist()
    assert [(r["_line"], r["_error"]) for r in rows] == [
        (2, None), (3, None), (5, "malformed_csv: expected 3 fields, got 2"), (6, None)]
    assert rows[1]["messages"][0]["content"] == "Two\nlines" and rows[3]["messages"][1]["content"] == "Done."


def test_wrong_typed_column_in_parquet_goes_row_by_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": [1, 2]}), p)
    t = read_all(p, format="alpaca")
    assert [r["_error"] for r in t.to_pylist()] == ["wrong_type: field 'output': expected string, got number"] * 2
    assert t.column("_line").to_pylist() == [1, 2]

"""Alpaca and LLaMA-Factory's Alpaca (system + history) on real-shaped records."""
from __future__ import annotations

import json

from tests.io.conftest import FIXTURES, bad, good, read_all


def test_system_and_history_come_first():
    rec = json.loads((FIXTURES / "alpaca_history.json").read_text())[0]
    rows = good(read_all(FIXTURES / "alpaca_history.json"))
    assert len(rows) == 1
    (u1, a1), (u2, a2) = rec["history"]
    user = rec["instruction"] + ("\n\n" + rec["input"] if rec["input"] else "")
    assert rows[0]["messages"] == [
        {"role": "system", "content": rec["system"]},
        {"role": "user", "content": u1}, {"role": "assistant", "content": a1},
        {"role": "user", "content": u2}, {"role": "assistant", "content": a2},
        {"role": "user", "content": user}, {"role": "assistant", "content": rec["output"]},
    ]


def test_column_mapping_and_join_option(tmp_path):
    p = tmp_path / "renamed.jsonl"
    p.write_text(json.dumps({"task": "Summarize.", "text": "Long text.", "answer": "Short."}) + "\n")
    rows = good(read_all(p, format="alpaca", columns={"instruction": "task", "input": "text", "output": "answer"},
                         options={"join": "\n---\n"}))
    assert rows[0]["messages"] == [{"role": "user", "content": "Summarize.\n---\nLong text."},
                                   {"role": "assistant", "content": "Short."}]
    assert rows[0]["meta"] == "{}"


def test_auto_detection_honours_the_column_map(tmp_path):
    p = tmp_path / "renamed.jsonl"
    p.write_text(json.dumps({"instruction": "Hi", "answer": "Hello"}) + "\n")
    rows = good(read_all(p, columns={"output": "answer"}))
    assert rows[0]["messages"][1] == {"role": "assistant", "content": "Hello"}


def test_default_system_prompt_and_id_prefix():
    t = read_all(FIXTURES / "alpaca_seed.jsonl", options={"system": "Be brief.", "id_prefix": "seed:"})
    rows = good(t)
    assert all(r["messages"][0] == {"role": "system", "content": "Be brief."} for r in rows)
    assert all(len(r["messages"]) == 3 and r["id"].startswith("seed:seed_task_") for r in rows)
    # a record with its own system prompt keeps it
    t2 = read_all(FIXTURES / "alpaca_history.json", options={"system": "Be brief."})
    assert good(t2)[0]["messages"][0]["content"] == "You are a helpful assistant."


def test_content_hash_ids_match_the_canonical_helper():
    from instructkit.messages import content_ids

    t = read_all(FIXTURES / "prompt_completion_seed.jsonl")
    assert not bad(t)
    assert t.column("id").to_pylist() == content_ids(t.column("messages")).to_pylist()
    assert len(set(t.column("id").to_pylist())) == t.num_rows


def test_bad_history_is_rejected(tmp_path):
    t = read_all(FIXTURES / "broken_alpaca.jsonl")
    last = t.to_pylist()[-1]
    assert last["_line"] == 10 and last["_error"].startswith("wrong_type: field 'history'")

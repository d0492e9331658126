"""ShareGPT: role aliases, top-level system, tool calls, and each bad conversation's reason."""
from __future__ import annotations

import pytest

from instructkit.errors import DataError
from tests.io.conftest import FIXTURES, bad, good, jsonl, read_all

ROLE = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant",
        "bing": "assistant", "model": "assistant", "system": "system"}


def test_role_spellings_map_to_canonical_roles():
    src = jsonl(FIXTURES / "sharegpt_oasst.jsonl")
    rows = good(read_all(FIXTURES / "sharegpt_oasst.jsonl"))
    assert len(rows) == len(src)
    for rec, row in zip(src, rows):
        want = [{"role": ROLE[c["from"].lower()], "content": c["value"]} for c in rec["conversations"]]
        if "system" in rec:
            want.insert(0, {"role": "system", "content": rec["system"]})
        assert row["messages"] == want
        assert row["id"] == rec["id"]


def test_function_calls_are_assistant_turns_and_observations_tool_turns():
    import json

    src = json.loads((FIXTURES / "glaive_toolcall_sharegpt.json").read_text())
    rows = good(read_all(FIXTURES / "glaive_toolcall_sharegpt.json"))
    roles = {"human": "user", "gpt": "assistant", "function_call": "assistant", "observation": "tool"}
    for rec, row in zip(src, rows):
        assert [m["role"] for m in row["messages"]] == [roles[c["from"]] for c in rec["conversations"]]
        assert json.loads(row["meta"])["tools"] == rec["tools"]


def test_broken_conversations_each_get_a_reason():
    t = read_all(FIXTURES / "broken_sharegpt.jsonl", format="sharegpt")
    by_line = {r["_line"]: r for r in t.to_pylist()}
    assert by_line[1]["_error"] is None
    assert by_line[2]["_error"] == "unknown_role: narrator"
    assert by_line[2]["messages"][1] == {"role": "narrator", "content": "Once upon a time..."}  # recovered for rejects
    assert by_line[3]["_error"] == "empty_conversation"
    assert by_line[4]["_error"] == "missing_field: value"
    assert by_line[5]["_error"].startswith("wrong_type: field 'conversations'")
    assert by_line[6]["_error"] is None and by_line[6]["id"] == "custom-7"
    assert by_line[6]["messages"] == [{"role": "user", "content": "Bye."}, {"role": "assistant", "content": "Goodbye!"}]
    assert len(set(r["id"] for r in t.to_pylist())) == 6


def test_extra_role_aliases_option():
    t = read_all(FIXTURES / "broken_sharegpt.jsonl", format="sharegpt", options={"role_aliases": {"narrator": "assistant"}})
    assert [r["_error"] for r in t.to_pylist()][1] is None


def test_on_error_fail_names_file_line_and_field():
    with pytest.raises(DataError) as ei:
        read_all(FIXTURES / "broken_sharegpt.jsonl", format="sharegpt", on_error="fail")
    assert str(ei.value).endswith("broken_sharegpt.jsonl:2: unknown_role: narrator")


def test_subfield_mapping(tmp_path):
    p = tmp_path / "custom.jsonl"
    p.write_text('{"dialog": [{"speaker": "human", "text": "Hi"}, {"speaker": "gpt", "text": "Hello"}]}\n')
    rows = good(read_all(p, format="sharegpt", columns={"conversations": "dialog", "from": "speaker", "value": "text"}))
    assert rows[0]["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert bad(read_all(p, format="sharegpt", columns={"conversations": "dialog"}))  # children not mapped

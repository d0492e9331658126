"""OpenAI messages, prompt/completion, Dolly and canonical records."""
from __future__ import annotations

import json

from tests.io.conftest import FIXTURES, bad, good, jsonl, read_all


def test_openai_messages_including_text_parts():
    src = jsonl(FIXTURES / "openai_oasst.jsonl")
    t = read_all(FIXTURES / "openai_oasst.jsonl")
    assert not bad(t)
    for rec, row in zip(src, t.to_pylist()):
        want = []
        for m in rec["messages"]:
            c = m["content"]
            want.append({"role": m["role"], "content": c if isinstance(c, str) else "\n".join(p["text"] for p in c)})
        assert row["messages"] == want
        assert json.loads(row["meta"]) == {"lang": "en"}


def test_openai_roles_are_validated(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "critic", "content": "b"}]}) + "\n"
                 + json.dumps({"messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "a"},
                                            {"role": "assistant", "content": "b"}]}) + "\n")
    rows = read_all(p).to_pylist()
    assert rows[0]["_error"] == "unknown_role: critic"
    assert [m["role"] for m in rows[1]["messages"]] == ["system", "user", "assistant"]


def test_prompt_completion():
    src = jsonl(FIXTURES / "prompt_completion_seed.jsonl")
    rows = good(read_all(FIXTURES / "prompt_completion_seed.jsonl"))
    assert [r["messages"] for r in rows] == [[{"role": "user", "content": s["prompt"]},
                                             {"role": "assistant", "content": s["completion"]}] for s in src]


def test_dolly_context_and_category():
    src = jsonl(FIXTURES / "dolly_shape.jsonl")
    rows = good(read_all(FIXTURES / "dolly_shape.jsonl"))
    assert len(rows) == len(src) == 4
    for s, r in zip(src, rows):
        user = s["instruction"] + ("\n\n" + s["context"] if s["context"] else "")
        assert r["messages"] == [{"role": "user", "content": user}, {"role": "assistant", "content": s["response"]}]
        assert json.loads(r["meta"]) == {"category": s["category"]}


def test_dolly_ja_is_alpaca_shaped_with_index_as_id():
    src = jsonl(FIXTURES / "dolly_ja.jsonl")
    rows = good(read_all(FIXTURES / "dolly_ja.jsonl", options={"id_field": "index"}))
    assert [r["id"] for r in rows] == [s["index"] for s in src]
    assert [json.loads(r["meta"]) for r in rows] == [{"category": s["category"]} for s in src]


def test_canonical_round_trip(tmp_path):
    import pyarrow.parquet as pq

    first = read_all(FIXTURES / "sharegpt_oasst.jsonl")
    out = tmp_path / "canon.parquet"
    pq.write_table(first.drop_columns(["_file", "_line", "_error"]), out)
    again = read_all(out, name="sharegpt_oasst")
    for col in ("id", "messages", "source", "meta"):
        assert again.column(col).to_pylist() == first.column(col).to_pylist()

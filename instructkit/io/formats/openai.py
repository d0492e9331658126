"""OpenAI chat `messages: [{role, content}, ...]` (also TRL's conversational format).

`content` given as a list of parts (`[{type: text, text: ...}]`) is joined into one string
on the per-line path; tool calls without text content are rejected as `missing_field: content`.
"""
from __future__ import annotations

import pyarrow as pa

from instructkit.io.assemble import build
from instructkit.io.formats.base import Context, Format, string_list_struct
from instructkit.io.formats.turns import turn_list


def _fields(names: dict[str, str]) -> dict[str, pa.DataType]:
    return {"messages": string_list_struct(names.get("role", "role"), names.get("content", "content"))}


def convert(ctx: Context) -> pa.Array:
    turns = turn_list(ctx, "messages", "role", "content")
    return build(ctx.n, [turns] if turns is not None else [])


def fix_row(row: dict) -> dict:
    """Join multimodal text parts so the row can be typed as plain strings."""
    msgs = row.get("messages")
    if isinstance(msgs, list):
        for m in msgs:
            if isinstance(m, dict) and isinstance(m.get("content"), list):
                parts = m["content"]
                if all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in parts):
                    m["content"] = "\n".join(p["text"] for p in parts)
    return row


FORMAT = Format("openai", _fields, ("messages",), convert, children={"role": "role", "content": "content"},
                doc="messages[{role, content}]", fix_row=fix_row)

"""ShareGPT: `conversations: [{from, value}, ...]` with many role spellings, optional `system`.

Roles are mapped case-insensitively: human/user/prompter -> user; gpt/assistant/chatgpt/bing/
bard/model -> assistant; system/developer -> system. In LLaMA-Factory's tool-calling exports a
`function_call` turn is the assistant emitting a call, so it maps to assistant, and the
`observation` (the tool's answer; also tool/function/ipython) maps to tool: that is the order
chat templates with tool support expect. `options.role_aliases` adds or overrides names.
"""
from __future__ import annotations

import pyarrow as pa

from instructkit.io.assemble import build
from instructkit.io.formats.base import Context, Format, string_list_struct
from instructkit.io.formats.turns import system_turn, turn_list


def _fields(names: dict[str, str]) -> dict[str, pa.DataType]:
    return {"conversations": string_list_struct(names.get("from", "from"), names.get("value", "value")),
            "system": pa.string()}


def convert(ctx: Context) -> pa.Array:
    turns = turn_list(ctx, "conversations", "from", "value")
    pieces = [system_turn(ctx), turns]
    return build(ctx.n, [p for p in pieces if p is not None])


FORMAT = Format("sharegpt", _fields, ("conversations",), convert, children={"from": "from", "value": "value"},
                doc="conversations[{from, value}] with role aliases; optional system")

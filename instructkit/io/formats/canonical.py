"""instructkit's own records (`id`, `messages`, `source`, `meta`), e.g. a previous run's output."""
from __future__ import annotations

import pyarrow as pa

from instructkit.io.assemble import build
from instructkit.io.formats.base import Context, Format, string_list_struct
from instructkit.io.formats.turns import turn_list


def _fields(names: dict[str, str]) -> dict[str, pa.DataType]:
    return {"messages": string_list_struct("role", "content"), "meta": pa.string(), "source": pa.string()}


def convert(ctx: Context) -> pa.Array:
    turns = turn_list(ctx, "messages", "role", "content")
    return build(ctx.n, [turns] if turns is not None else [])


FORMAT = Format("canonical", _fields, ("messages",), convert, doc="id, messages[{role, content}], source, meta")

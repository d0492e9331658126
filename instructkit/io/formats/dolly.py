"""Dolly: `instruction`, optional `context`, `response`; `category` is kept in meta."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from instructkit.io.assemble import build, join_nonempty, single
from instructkit.io.formats.base import Context, Format
from instructkit.io.formats.turns import system_turn


def _fields(names: dict[str, str]) -> dict[str, pa.DataType]:
    return {"instruction": pa.string(), "context": pa.string(), "response": pa.string(), "system": pa.string()}


def convert(ctx: Context) -> pa.Array:
    instruction = ctx.require("instruction")
    response = ctx.require("response")
    if instruction is None or response is None:
        return build(ctx.n, [])
    context = ctx.optional("context")
    user = join_nonempty(instruction, context, ctx.options.get("join", "\n\n")) if context is not None else instruction
    ones = np.ones(ctx.n, bool)
    pieces = [system_turn(ctx), single(user.fill_null(""), "user", ones), single(response.fill_null(""), "assistant", ones)]
    return build(ctx.n, [p for p in pieces if p is not None])


FORMAT = Format("dolly", _fields, ("instruction", "response"), convert,
                doc="instruction (+ context) -> user, response -> assistant; category kept in meta")

"""Alpaca: `instruction`, optional `input`, `output`; LLaMA-Factory adds `system` and `history`
(a list of [user, assistant] pairs that come before the instruction)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.io.assemble import Piece, build, join_nonempty, single
from instructkit.io.formats.base import Context, Format
from instructkit.io.formats.turns import system_turn


def _fields(names: dict[str, str]) -> dict[str, pa.DataType]:
    return {"instruction": pa.string(), "input": pa.string(), "output": pa.string(), "system": pa.string(),
            "history": pa.list_(pa.list_(pa.string()))}


def history_piece(ctx: Context, name: str = "history") -> Piece | None:
    hist = ctx.optional(name)
    if hist is None:
        return None
    pairs = pc.list_flatten(hist)
    pair_rows = pc.list_parent_indices(hist).to_numpy(zero_copy_only=False)
    bad_pair = pc.not_equal(pc.list_value_length(pairs).fill_null(0), 2).to_numpy(zero_copy_only=False)
    if bad_pair.any():
        bad_rows = np.zeros(ctx.n, dtype=bool)
        bad_rows[pair_rows[bad_pair]] = True
        ctx.errors.mark(bad_rows, f"wrong_type: field '{name}': expected a list of [user, assistant] pairs")
        hist = pc.if_else(pa.array(bad_rows), pa.nulls(ctx.n, hist.type), hist)
        pairs = pc.list_flatten(hist)
    counts = pc.list_value_length(hist).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * 2
    contents = pc.list_flatten(pairs)
    roles = pa.array(np.tile(np.array(["user", "assistant"], dtype=object), len(pairs)), pa.string())
    return Piece(counts, roles, contents)


def convert(ctx: Context) -> pa.Array:
    instruction = ctx.require("instruction")
    output = ctx.require("output")
    if instruction is None or output is None:
        return build(ctx.n, [])
    inp = ctx.optional("input")
    user = join_nonempty(instruction, inp, ctx.options.get("join", "\n\n")) if inp is not None else instruction
    pieces = [system_turn(ctx), history_piece(ctx), single(user.fill_null(""), "user", np.ones(ctx.n, bool)),
              single(output.fill_null(""), "assistant", np.ones(ctx.n, bool))]
    return build(ctx.n, [p for p in pieces if p is not None])


FORMAT = Format("alpaca", _fields, ("instruction", "output"), convert,
                doc="instruction (+ input) -> user, output -> assistant; optional system, history pairs")

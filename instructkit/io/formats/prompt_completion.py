"""Prompt/completion pairs (OpenAI legacy fine-tuning files, many HF datasets)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from instructkit.io.assemble import build, single
from instructkit.io.formats.base import Context, Format
from instructkit.io.formats.turns import system_turn


def _fields(names: dict[str, str]) -> dict[str, pa.DataType]:
    return {"prompt": pa.string(), "completion": pa.string(), "system": pa.string()}


def convert(ctx: Context) -> pa.Array:
    prompt = ctx.require("prompt")
    completion = ctx.require("completion")
    if prompt is None or completion is None:
        return build(ctx.n, [])
    ones = np.ones(ctx.n, bool)
    pieces = [system_turn(ctx), single(prompt.fill_null(""), "user", ones),
              single(completion.fill_null(""), "assistant", ones)]
    return build(ctx.n, [p for p in pieces if p is not None])


FORMAT = Format("prompt_completion", _fields, ("prompt", "completion"), convert,
                doc="prompt -> user, completion -> assistant; optional system")

"""What a record format is: the fields it reads (with their Arrow types) and one vectorized
function that turns a batch of those fields into the `messages` column.

Keeping formats this small means adding one is a 40-line file, and the file/line handling,
bad-row recovery, ids and meta are written once (`instructkit/io/convert.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Source role name -> canonical role. ShareGPT exports use many spellings.
DEFAULT_ROLE_ALIASES = {
    "system": "system",
    "user": "user", "human": "user", "prompter": "user",
    "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant", "bing": "assistant",
    "bard": "assistant", "model": "assistant",
    # a function *call* is what the assistant says; its result (observation) is the tool turn
    "function_call": "assistant", "tool_call": "assistant",
    "tool": "tool", "function": "tool", "observation": "tool", "ipython": "tool",
    "developer": "system",
}


class Errors:
    """Per-row error strings; the first error found for a row wins (it is the root cause)."""

    def __init__(self, n: int, initial: pa.Array | None = None):
        self.values = np.full(n, None, dtype=object)
        if initial is not None:
            init = initial.to_numpy(zero_copy_only=False)
            self.values[:] = init

    def mark(self, mask: np.ndarray, message: str | np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool) & np.equal(self.values, None)
        if not mask.any():
            return
        if isinstance(message, np.ndarray):
            self.values[mask] = message[mask]
        else:
            self.values[mask] = message

    @property
    def ok(self) -> np.ndarray:
        return np.equal(self.values, None)


@dataclass
class Context:
    """A batch handed to a format: columns renamed to the format's field names."""

    table: pa.Table
    errors: Errors
    options: dict[str, Any]
    names: dict[str, str]  # nested child field names (e.g. from/value), after the user's column map

    @property
    def n(self) -> int:
        return self.table.num_rows

    def has(self, name: str) -> bool:
        return name in self.table.column_names and not pa.types.is_null(self.table.schema.field(name).type)

    def col(self, name: str) -> pa.Array:
        c = self.table.column(name)
        return c.combine_chunks() if c.num_chunks != 1 else c.chunk(0)

    def require(self, name: str) -> pa.Array | None:
        """The column, marking rows where it is null as `missing_field: name`."""
        if not self.has(name):
            self.errors.mark(np.ones(self.n, bool), f"missing_field: {self.names.get(name, name)}")
            return None
        c = self.col(name)
        self.errors.mark(pc.is_null(c).to_numpy(zero_copy_only=False), f"missing_field: {self.names.get(name, name)}")
        return c

    def optional(self, name: str) -> pa.Array | None:
        return self.col(name) if self.has(name) else None

    def aliases(self) -> dict[str, str]:
        out = dict(DEFAULT_ROLE_ALIASES)
        out.update({k.strip().lower(): v for k, v in self.options.get("role_aliases", {}).items()})
        return out


@dataclass(frozen=True)
class Format:
    name: str
    #: top-level fields read by the format -> Arrow type; nested struct children use `children` names
    fields: Callable[[dict[str, str]], dict[str, pa.DataType]]
    required: tuple[str, ...]
    convert: Callable[[Context], pa.Array]
    #: default names of nested children that `columns:` may remap (e.g. {"from": "from"})
    children: dict[str, str] = field(default_factory=dict)
    doc: str = ""
    #: per-row repair used only on the per-line path (e.g. OpenAI content parts -> string)
    fix_row: Callable[[dict], dict] | None = None


def string_list_struct(a: str, b: str) -> pa.DataType:
    return pa.list_(pa.struct([pa.field(a, pa.string()), pa.field(b, pa.string())]))

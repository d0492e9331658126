"""Vectorized construction of the `messages` column from per-format pieces.

Every format is "some optional turns, then some list of turns, then some more turns" per row
(Alpaca: system?, history pairs, user, assistant). Building that with a Python loop per row
would cost more than parsing the JSON, so each piece is given as flat Arrow arrays plus a
per-row count, and one numpy scatter puts every turn at its place in the final list array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.schema import MESSAGE_TYPE, MESSAGES_TYPE


@dataclass
class Piece:
    """Turns contributed by one source field: `counts[i]` turns for row i, in flat order."""

    counts: np.ndarray  # int64, one per row
    roles: pa.Array  # string, len == counts.sum()
    contents: pa.Array  # string, len == counts.sum()


def single(content: pa.Array, role: str, present: np.ndarray | None = None) -> Piece:
    """One turn per row with a constant role (rows where `present` is False get none)."""
    content = _chunk(content).cast(pa.string())
    if present is None:
        present = pc.is_valid(content).to_numpy(zero_copy_only=False)
    present = np.asarray(present, dtype=bool)
    kept = content.filter(pa.array(present))
    return Piece(present.astype(np.int64), pa.array([role] * len(kept), pa.string()) if len(kept) else
                 pa.array([], pa.string()), kept)


def listed(lists: pa.Array, roles: pa.Array, contents: pa.Array) -> Piece:
    """A list column whose flattened elements already carry a role and a content."""
    lists = _chunk(lists)
    counts = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return Piece(counts, roles.cast(pa.string()), contents.cast(pa.string()))


def build(n: int, pieces: list[Piece]) -> pa.ListArray:
    """Concatenate the pieces row by row into a list<struct<role, content>> array of length n."""
    pieces = [p for p in pieces if len(p.counts)]
    if not pieces:
        return pa.array([[] for _ in range(n)], MESSAGES_TYPE)
    per_row = np.zeros(n, dtype=np.int64)
    for p in pieces:
        per_row += p.counts
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_row, out=offsets[1:])
    total = int(offsets[-1])
    dest_parts = []
    before = np.zeros(n, dtype=np.int64)  # turns already placed per row by earlier pieces
    for p in pieces:
        m = int(p.counts.sum())
        if m:
            row_of = np.repeat(np.arange(n, dtype=np.int64), p.counts)
            starts = np.zeros(n, dtype=np.int64)
            np.cumsum(p.counts[:-1], out=starts[1:])
            within = np.arange(m, dtype=np.int64) - starts[row_of]
            dest_parts.append(offsets[row_of] + before[row_of] + within)
        before += p.counts
    dest = np.concatenate(dest_parts) if dest_parts else np.zeros(0, np.int64)
    order = np.empty(total, dtype=np.int64)
    order[dest] = np.arange(total, dtype=np.int64)
    roles = pa.concat_arrays([_chunk(p.roles) for p in pieces])
    contents = pa.concat_arrays([_chunk(p.contents) for p in pieces])
    idx = pa.array(order)
    struct = pa.StructArray.from_arrays([roles.take(idx), contents.take(idx)], fields=list(MESSAGE_TYPE))
    off_type = pa.int32() if total < 2**31 - 1 else pa.int64()
    if off_type == pa.int64():
        return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), struct).cast(MESSAGES_TYPE)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct)


def map_roles(raw: pa.Array, aliases: dict[str, str]) -> tuple[pa.Array, np.ndarray]:
    """Map source role names (case/whitespace-insensitive) to canonical roles.

    Returns the mapped roles (null where unknown) and a boolean mask of unknown roles.
    """
    raw = _chunk(raw).cast(pa.string())
    key = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
    names = list(aliases)
    idx = pc.index_in(key, value_set=pa.array(names, pa.string()))
    mapped = pa.array([aliases[k] for k in names], pa.string()).take(idx)
    unknown = pc.is_null(idx).to_numpy(zero_copy_only=False)
    return mapped, unknown


def join_nonempty(a: pa.Array, b: pa.Array, sep: str) -> pa.Array:
    """`a + sep + b` where b is non-empty, else `a` (Alpaca instruction + input)."""
    a = _chunk(a).cast(pa.string())
    b = _chunk(b).cast(pa.string())
    has_b = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(b.fill_null(""))), 0).fill_null(False)
    joined = pc.binary_join_element_wise(a, b, sep)
    return pc.if_else(has_b, joined, a)


def _chunk(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(a, pa.ChunkedArray):
        return a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    return a

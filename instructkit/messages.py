"""Vectorized views of the `messages` column, shared by every operator.

Operators must not loop over rows in Python; these helpers flatten the list<struct> column
into parallel Arrow arrays (row index, role, content) and join per-row text back with Polars.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc


def _chunk(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def flatten(messages: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Return (row index per turn, role per turn, content per turn) for a messages column."""
    arr = _chunk(messages)
    rows = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(arr)
    return rows, flat.field("role"), flat.field("content")


def turn_index(messages: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Position of each flattened turn within its conversation (0-based)."""
    arr = _chunk(messages)
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths)


def role_text(
    messages: pa.ChunkedArray | pa.Array,
    roles: Iterable[str] | None = None,
    sep: str = "\n",
    first_only: bool = False,
    last_only: bool = False,
) -> pa.Array:
    """Per row, the contents of the turns with the given roles joined by `sep` ("" when none).

    `first_only`/`last_only` keep only the first/last matching turn of each row.
    """
    arr = _chunk(messages)
    n = len(arr)
    rows, role, content = flatten(arr)
    df = pl.DataFrame({"row": rows, "role": pl.from_arrow(role), "content": pl.from_arrow(content)})
    if roles is not None:
        df = df.filter(pl.col("role").is_in(list(roles)))
    agg = pl.col("content").fill_null("")
    if first_only:
        grouped = df.group_by("row", maintain_order=True).agg(agg.first().alias("text"))
    elif last_only:
        grouped = df.group_by("row", maintain_order=True).agg(agg.last().alias("text"))
    else:
        grouped = df.group_by("row", maintain_order=True).agg(agg.str.join(sep).alias("text"))
    full = pl.DataFrame({"row": np.arange(n, dtype=rows.dtype if len(rows) else np.int32)})
    out = full.join(grouped, on="row", how="left").sort("row")["text"].fill_null("")
    return out.to_arrow()


def count_roles(messages: pa.ChunkedArray | pa.Array, role: str) -> np.ndarray:
    """Number of turns with `role` in each row."""
    arr = _chunk(messages)
    rows, roles, _ = flatten(arr)
    mask = pc.equal(roles, role).fill_null(False).to_numpy(zero_copy_only=False)
    return np.bincount(rows[mask], minlength=len(arr)).astype(np.int64)


def rebuild(
    like: pa.ChunkedArray | pa.Array, rows: np.ndarray, role: pa.Array, content: pa.Array, n_rows: int
) -> pa.Array:
    """Build a messages column from flattened turns (rows must be sorted ascending).

    Used by operators that edit or drop turns: flatten, transform the flat arrays, rebuild.
    """
    rows = np.asarray(rows, dtype=np.int64)
    counts = np.bincount(rows, minlength=n_rows)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    struct = pa.StructArray.from_arrays([role.cast(pa.string()), content.cast(pa.string())], names=["role", "content"])
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), struct)


def content_ids(messages: pa.ChunkedArray | pa.Array, prefix: str = "") -> pa.Array:
    """Stable ids from content: xxh3-128 hex of the role/content sequence (separator-safe).

    The hashed bytes of a row are `role \x1f content` per turn (nulls as ""), turns joined by
    `\x1e`, UTF-8. xxh3-128 has a frozen specification, so the same conversation gets the same id
    in every run, process, engine and library version, which is what id-keyed sampling,
    splitting and resume rely on. The per-row text is built by Arrow kernels and hashed straight
    from the Arrow buffer (one C call per row, no Python strings).
    """
    import xxhash

    arr = _chunk(messages)
    flat = pc.list_flatten(arr)
    turn = pc.binary_join_element_wise(flat.field("role").fill_null(""), flat.field("content").fill_null(""), "\x1f")
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    text = pc.binary_join(pa.LargeListArray.from_arrays(pa.array(off, pa.int64()), turn), "\x1e")
    text = text.fill_null("").cast(pa.large_string())
    bounds = np.frombuffer(text.buffers()[1], np.int64)[text.offset:text.offset + len(text) + 1].tolist()
    data = memoryview(text.buffers()[2] or b"")
    h = xxhash.xxh3_128_hexdigest
    return pa.array([prefix + h(data[a:b]) for a, b in zip(bounds, bounds[1:])], pa.string())

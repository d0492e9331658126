"""Shared helpers for the filter family: per-role text views and Decision assembly.

Every filter looks at the same two views of a conversation: what the user asked (all user turns)
and what the assistant answered (all assistant turns), so they live here once. The flag-list
helper turns several boolean columns into one `list<string>` column and one reason per row,
so the reason a row is dropped is always the first flag in a documented priority order.
"""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow as pa

from instructkit import messages as msg


def role_views(batch: pa.Table) -> pl.DataFrame:
    """Columns `user`, `assistant` (all turns of that role joined by a blank line), `first_user`,
    `last_assistant` (the turn pair single-turn checks look at); "" where a row has none."""
    col = batch.column("messages")
    return pl.DataFrame({
        "user": pl.from_arrow(msg.role_text(col, ["user"], sep="\n\n")),
        "assistant": pl.from_arrow(msg.role_text(col, ["assistant"], sep="\n\n")),
        "first_user": pl.from_arrow(msg.role_text(col, ["user"], first_only=True)),
        "last_assistant": pl.from_arrow(msg.role_text(col, ["assistant"], last_only=True)),
    })


def set_columns(batch: pa.Table, columns: dict[str, pa.Array | np.ndarray | list]) -> pa.Table:
    """Add or replace columns (re-running a filter on annotated data overwrites its own columns)."""
    for name, values in columns.items():
        arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
        idx = batch.schema.get_field_index(name)
        batch = batch.set_column(idx, name, arr) if idx >= 0 else batch.append_column(name, arr)
    return batch


def flag_lists(flags: dict[str, np.ndarray], n: int) -> tuple[pa.Array, np.ndarray]:
    """`list<string>` of the raised flags per row (in dict order) and the first flag (or None)."""
    names = list(flags)
    if not names:
        return pa.array([[] for _ in range(n)], pa.list_(pa.string())), np.full(n, None, dtype=object)
    mat = np.column_stack([np.asarray(flags[k], dtype=bool) for k in names])
    rows, cols = np.nonzero(mat)  # row-major: rows ascending, flags in priority order
    offsets = np.concatenate([[0], np.cumsum(mat.sum(axis=1))]).astype(np.int32)
    values = pa.array(np.asarray(names, dtype=object)[cols], pa.string())
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
    first = np.full(n, None, dtype=object)
    any_flag = mat.any(axis=1)
    first[any_flag] = np.asarray(names, dtype=object)[mat[any_flag].argmax(axis=1)]
    return lists, first


def details(columns: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """JSON detail strings (only for rows in `mask`, the dropped ones) from a few score columns."""
    out = np.full(len(mask), None, dtype=object)
    idx = np.flatnonzero(mask)
    for i in idx:  # only dropped rows: usually a small share of the batch
        out[i] = json.dumps({k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in columns.items()},
                            ensure_ascii=False)
    return out

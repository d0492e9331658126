"""Shared pieces for formats whose records hold a list of turns (ShareGPT, OpenAI, canonical)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.io.assemble import Piece, listed, map_roles, single
from instructkit.io.formats.base import Context


def turn_list(ctx: Context, list_field: str, role_child: str, content_child: str) -> Piece | None:
    """Turns of a list<struct<role, content>> column with roles mapped through the aliases.

    Marks `unknown_role: <name>` (first unknown role of the row) and `missing_field: <child>`
    (a turn without role or content); the raw role is kept so a reject shows what was there.
    """
    lists = ctx.require(list_field)
    if lists is None:
        return None
    role_name, content_name = ctx.names.get(role_child, role_child), ctx.names.get(content_child, content_child)
    flat = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    raw_roles = flat.field(role_name)
    contents = flat.field(content_name)
    mapped, unknown = map_roles(raw_roles, ctx.aliases())
    null_role = pc.is_null(raw_roles).to_numpy(zero_copy_only=False)
    if null_role.any():
        ctx.errors.mark(_rows_mask(ctx.n, rows[null_role]), f"missing_field: {role_name}")
    unknown &= ~null_role
    if unknown.any():
        msg = np.full(ctx.n, None, dtype=object)
        first_rows, first_idx = np.unique(rows[unknown], return_index=True)
        names = np.asarray(raw_roles.filter(pa.array(unknown)).to_pylist(), dtype=object)[first_idx]
        msg[first_rows] = [f"unknown_role: {r}" for r in names]
        ctx.errors.mark(_rows_mask(ctx.n, first_rows), msg)
    null_content = pc.is_null(contents).to_numpy(zero_copy_only=False)
    if null_content.any():
        ctx.errors.mark(_rows_mask(ctx.n, rows[null_content]), f"missing_field: {content_name}")
    shown = pc.coalesce(mapped, raw_roles.cast(pa.string()))
    return listed(lists, shown, contents)


def system_turn(ctx: Context, name: str = "system") -> Piece | None:
    """An optional top-level system prompt field (skipped when null or empty)."""
    col = ctx.optional(name)
    if col is None:
        return None
    col = col.cast(pa.string())
    present = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col.fill_null(""))), 0).fill_null(False)
    return single(col, "system", present.to_numpy(zero_copy_only=False))


def _rows_mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask

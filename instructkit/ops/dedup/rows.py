"""Bookkeeping shared by the dedup barriers: what `fit` learned per row, replayed in `process`.

A barrier's `fit` sees every batch in order and decides per row; the engine then calls `process`
on the same batches in the same order. `RowDecisions` holds the per-row results in that order and
hands out the slice for each batch, checking the ids so a reordered replay fails loudly
(or, when ids are unique, is mapped by id) instead of dropping the wrong rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.errors import InvariantError

if TYPE_CHECKING:
    from instructkit.ops.base import Decision


@dataclass
class RowDecisions:
    """Per-row arrays in fit order: ids, keep flag, and annotation/detail columns."""

    stage: str
    ids: pa.ChunkedArray
    keep: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # annotation columns (kept and dropped rows)
    detail: dict[str, np.ndarray] = field(default_factory=dict)  # JSON detail fields for dropped rows
    cursor: int = 0
    _by_id: dict[str, int] | None = None

    def take(self, batch: pa.Table) -> np.ndarray:
        """Row positions (in fit order) of this batch's rows."""
        n = batch.num_rows
        ids = batch.column("id")
        lo = self.cursor
        if lo + n <= len(self.keep):
            expect = self.ids.slice(lo, n)
            same = n == 0 or pc.all(pc.equal(expect, ids).fill_null(False)).as_py() or (
                pc.all(pc.is_null(expect)).as_py() and pc.all(pc.is_null(ids)).as_py()
            )
            if same:
                self.cursor += n
                return np.arange(lo, lo + n, dtype=np.int64)
        if self._by_id is None:
            all_ids = self.ids.to_pylist()
            if len(set(all_ids)) != len(all_ids):
                raise InvariantError(
                    f"{self.stage}: batches were replayed in a different order than fit() saw them and ids "
                    "are not unique, so rows cannot be matched to their dedup decision"
                )
            self._by_id = {v: i for i, v in enumerate(all_ids)}
        try:
            return np.array([self._by_id[v] for v in ids.to_pylist()], dtype=np.int64)
        except KeyError as exc:
            raise InvariantError(f"{self.stage}: row id {exc.args[0]!r} was not seen by fit()") from None


def decide(state: RowDecisions, batch: pa.Table, reason: str, types: dict[str, pa.DataType]) -> "Decision":
    """Replay fit-time decisions on one batch: annotation columns for every row, and the reason
    plus JSON detail (cluster, kept id, ...) for the rows that are dropped."""
    from instructkit.ops.base import Decision

    pos = state.take(batch)
    out = batch
    for col, values in state.columns.items():
        arr = pa.array(values[pos], types.get(col, pa.int64()))
        if col in out.column_names:
            out = out.set_column(out.schema.get_field_index(col), col, arr)
        else:
            out = out.append_column(col, arr)
    keep = state.keep[pos]
    detail = np.full(len(pos), None, dtype=object)
    drop = np.flatnonzero(~keep)
    if len(drop):
        detail[drop] = json_details(state.detail, pos[drop]).to_numpy(zero_copy_only=False)
    return Decision.from_mask(out, keep, reason, detail)


def json_details(fields: dict[str, np.ndarray | list], rows: np.ndarray) -> pa.Array:
    """One JSON object per selected row from parallel columns (vectorized with Polars)."""
    if len(rows) == 0:
        return pa.array([], pa.string())
    data: dict[str, Any] = {}
    for key, values in fields.items():
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            data[key] = pl.from_arrow(values.take(pa.array(rows)))
        else:
            data[key] = np.asarray(values)[rows]
    df = pl.DataFrame(data)
    out = df.select(pl.struct(df.columns).struct.json_encode().alias("j"))["j"]
    return out.to_arrow().cast(pa.string())


def dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)

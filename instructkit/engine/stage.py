"""A `Stage` wraps one operator with what the engine needs: its position, options and stats.

Both engines (local and Ray) apply operators through `apply_chain`, so a row is kept or
rejected for exactly the same reason whichever engine runs the pipeline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from instructkit.errors import InvariantError
from instructkit.ops.base import Decision, Operator


@dataclass
class StageStats:
    rows_in: int = 0
    rows_out: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def merge(self, other: "StageStats") -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.seconds += other.seconds
        for k, v in other.rejected.items():
            self.rejected[k] = self.rejected.get(k, 0) + v

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rejected": dict(sorted(self.rejected.items(), key=lambda kv: -kv[1])),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Stage:
    index: int
    op: Operator
    annotate_only: bool = False

    @property
    def label(self) -> str:
        return f"{self.index:02d}_{self.op.name}"

    @property
    def kind(self) -> str:
        return self.op.kind


@dataclass
class Rejected:
    """Rows a stage dropped, ready for the reject writer."""

    stage: str
    table: pa.Table
    reason: pa.Array
    detail: pa.Array | None


def apply_stage(stage: Stage, batch: pa.Table, stats: StageStats) -> tuple[pa.Table, Rejected | None]:
    """Run one operator on one batch, split kept from rejected rows, and count both."""
    t0 = time.perf_counter()
    result = stage.op.process(batch)
    rejected = None
    if isinstance(result, Decision):
        table = result.table
        if table.num_rows != batch.num_rows or len(result.reason) != batch.num_rows:
            raise InvariantError(
                f"stage {stage.label}: returned {table.num_rows} rows / {len(result.reason)} reasons for "
                f"{batch.num_rows} input rows; filters must return one reason per input row"
            )
        keep = result.keep_mask()
        if not stage.annotate_only and not keep.all():
            mask = pa.array(keep)
            drop = pa.array(~keep)
            reason = result.reason.filter(drop)
            detail = result.detail.filter(drop) if result.detail is not None else None
            rejected = Rejected(stage.label, table.filter(drop), reason, detail)
            for value, count in zip(*np.unique(np.asarray(reason.to_pylist(), dtype=object), return_counts=True)):
                stats.rejected[str(value)] = stats.rejected.get(str(value), 0) + int(count)
            table = table.filter(mask)
    else:
        table = result
        if table.num_rows != batch.num_rows:
            raise InvariantError(
                f"stage {stage.label}: a {stage.kind} operator returned {table.num_rows} rows for "
                f"{batch.num_rows}; only filters may drop rows (and must give a reason)"
            )
    stats.rows_in += batch.num_rows
    stats.rows_out += table.num_rows
    stats.seconds += time.perf_counter() - t0
    return table, rejected


def apply_chain(
    stages: list[Stage], batch: pa.Table, stats: dict[str, StageStats]
) -> tuple[pa.Table, list[Rejected]]:
    """Run consecutive row-local stages on one batch."""
    rejected: list[Rejected] = []
    for stage in stages:
        if batch.num_rows == 0:
            stats.setdefault(stage.label, StageStats())
            continue
        batch, rej = apply_stage(stage, batch, stats.setdefault(stage.label, StageStats()))
        if rej is not None:
            rejected.append(rej)
    return batch, rejected

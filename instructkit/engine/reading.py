"""Reading inputs for either engine: read errors and mix sampling become rejects here.

Both engines call `route_batch` on every batch a reader yields, so a malformed line or a
sampled-out row is rejected with the same stage, reason and detail whichever engine runs.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.engine.sampling import cap_threshold, id_hash_unit
from instructkit.io.writers import RejectWriter

READ_STAGE = "00_read"
MIX_STAGE = "00_mix"


def input_batches(spec: Any, batch_size: int) -> Callable[[], Iterator[pa.Table]]:
    """A re-callable batch source for a file input (`InputSpec`) or an in-memory table."""
    if hasattr(spec, "batches"):
        return lambda: spec.batches(batch_size)
    from instructkit.io import read_input

    return lambda: read_input(spec, batch_size=batch_size)


def input_name(spec: Any) -> str:
    """One name per input (not per shard): the `source` its rows carry."""
    if hasattr(spec, "batches"):
        return spec.name
    from instructkit.io.convert import source_name

    return source_name(spec)


def mix_salt(mix_seed: int, name: str) -> str:
    return f"{mix_seed}:{name}"


def good_row_units(source: Callable[[], Iterator[pa.Table]], salt: str) -> np.ndarray:
    """Hash units of an input's well-formed rows: what a `cap` threshold is chosen from."""
    units = [id_hash_unit(b.column("id"), 0, salt)[pc.is_null(b.column("_error")).to_numpy(zero_copy_only=False)]
             for b in source()]
    return np.concatenate(units) if units else np.zeros(0)


def sampling_limit(weight: float | None, cap: int | None, units: Callable[[], np.ndarray]) -> float | None:
    """The id-hash value under which rows are kept (None: keep all).

    `weight` keeps that share of the input; `cap` keeps at most that many rows (the `cap`
    smallest hash values among the rows `weight` keeps). `units` is only called for a cap.
    """
    if weight is None and cap is None:
        return None
    limit = 1.0 if weight is None else float(weight)
    if cap is not None:
        u = units()
        u = u[u < limit]
        if cap < len(u):
            limit = min(limit, cap_threshold(u, cap))
    return limit


def split_error(bad_rows: pa.Table) -> tuple[pa.Array, pa.Array]:
    """Readers put "reason: detail" in `_error`; rejects want them apart."""
    e = bad_rows.column("_error").combine_chunks()
    parts = pc.split_pattern(e, ":", max_splits=1)
    reason = pc.utf8_trim_whitespace(pc.list_element(parts, 0))
    has_detail = pc.greater(pc.list_value_length(parts), 1)
    detail = pc.if_else(has_detail, pc.utf8_trim_whitespace(pc.list_element(pc.list_slice(parts, 1, 2, 1, True), 0)),
                        pa.scalar(None, pa.string()))
    return reason, detail


def new_input_info(spec: Any, name: str) -> dict[str, Any]:
    return {"name": name, "path": str(getattr(spec, "path", "<memory>")), "rows_read": 0, "bad_rows": 0,
            "sampled_out": 0}


def route_batch(batch: pa.Table, rejects: RejectWriter, info: dict[str, Any], salt: str,
                limit: float | None) -> pa.Table:
    """Reject malformed and sampled-out rows of one read batch; return the rows that go on."""
    info["rows_read"] += batch.num_rows
    bad = pc.is_valid(batch.column("_error")).to_numpy(zero_copy_only=False)
    if bad.any():
        bad_rows = batch.filter(pa.array(bad))
        reason, detail = split_error(bad_rows)
        rejects.add(bad_rows, READ_STAGE, reason, detail)
        info["bad_rows"] += int(bad.sum())
        batch = batch.filter(pa.array(~bad))
    if limit is not None and batch.num_rows:
        keep = id_hash_unit(batch.column("id"), 0, salt) < limit
        if not keep.all():
            out = batch.filter(pa.array(~keep))
            rejects.add(out, MIX_STAGE, pa.array(["sampled_out"] * out.num_rows, pa.string()),
                        pa.array([json.dumps({"input": info["name"]})] * out.num_rows, pa.string()))
            info["sampled_out"] += out.num_rows
            batch = batch.filter(pa.array(keep))
    return batch

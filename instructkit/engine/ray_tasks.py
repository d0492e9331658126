"""What runs inside Ray tasks and actors: reading one input, and applying a segment's stages.

Every function here is idempotent on purpose. Ray re-runs a task whose worker died, so a task
writes its rejects and its stats to files whose names depend only on the rows it was given
(`batch_key`): a retried task overwrites what the failed attempt may have left, and the run's
counts stay exact. Kept rows are the task's return value and flow on through Ray's object store.

Rows carry one extra column while in Ray, `_rowpos` (input index << 40 | row number in that
input): it is the row's position in the order the local engine would see it, which is what the
distributed dedup strategies need to break "keep the first" ties exactly like the local engine.
It is dropped before anything is written.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import xxhash

from instructkit.engine.reading import (good_row_units, input_batches, mix_salt, new_input_info,
                                        route_batch)
from instructkit.engine.stage import Stage, StageStats, apply_chain, apply_stage
from instructkit.io.writers import RejectWriter

ROWPOS = "_rowpos"
#: Row number bits inside `_rowpos`; 2**40 rows per input is more than any file holds.
ROWPOS_SHIFT = 40


@dataclass(frozen=True)
class RunDirs:
    """Where tasks put their side outputs. Must be on storage every node mounts (see docs)."""

    rejects: str
    stats: str

    def write_stats(self, name: str, payload: dict[str, Any]) -> None:
        path = Path(self.stats) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(payload))
        tmp.replace(path)  # atomic: a half-written stats file never counts


def batch_key(table: pa.Table) -> str:
    """A name for a batch that depends only on which rows it holds (so a retry reuses it)."""
    pos = table.column(ROWPOS).to_numpy() if ROWPOS in table.column_names else np.zeros(0, np.int64)
    h = xxhash.xxh3_128()
    h.update(np.ascontiguousarray(pos).tobytes())
    ids = table.column("id")
    h.update(f"{table.num_rows}|{ids[0] if len(ids) else ''}|{ids[-1] if len(ids) else ''}".encode())
    return h.hexdigest()[:20]


@contextlib.contextmanager
def working_dir(path: str) -> Iterator[None]:
    """Relative input paths mean what they meant on the driver (a Ray worker starts elsewhere);
    chdir rather than making paths absolute keeps `_file` provenance identical to the local engine."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def read_one_input(
    item: pa.Table,
    inputs: Any,
    names: list[str],
    limits: list[float | None],
    mix_seed: int,
    batch_size: int,
    dirs: RunDirs,
    cwd: str,
) -> Iterator[pa.Table]:
    """Ray task body: read input #i with our own readers, route bad/sampled-out rows to rejects.

    Mirrors `local.Reader` batch for batch, so malformed rows and mixing behave identically.
    `inputs` is an ObjectRef of the input list (in-memory tables can be large: shipped once).
    """
    import ray

    i = int(item.column("input")[0].as_py())
    if isinstance(inputs, ray.ObjectRef):
        inputs = ray.get(inputs)
    spec, name, limit = inputs[i], names[i], limits[i]
    with working_dir(cwd):
        yield from _read_spec(i, spec, name, limit, mix_seed, batch_size, dirs)


def _read_spec(i: int, spec: Any, name: str, limit: float | None, mix_seed: int, batch_size: int,
               dirs: RunDirs) -> Iterator[pa.Table]:
    salt = mix_salt(mix_seed, name)
    rejects = RejectWriter(Path(dirs.rejects), prefix=f"seg0-read{i:05d}")
    info = new_input_info(spec, name)
    row = 0
    for batch in input_batches(spec, batch_size)():
        n = batch.num_rows
        pos = (np.int64(i) << np.int64(ROWPOS_SHIFT)) + np.arange(row, row + n, dtype=np.int64)
        row += n
        batch = route_batch(batch.append_column(ROWPOS, pa.array(pos, pa.int64())), rejects, info, salt, limit)
        if batch.num_rows:
            yield batch
    rejects.close()
    dirs.write_stats(f"read-{i:05d}", info)


def input_units(spec: Any, name: str, mix_seed: int, batch_size: int, cwd: str) -> np.ndarray:
    """Hash units of an input's well-formed rows, read where the input lives (for a `cap`)."""
    with working_dir(cwd):
        return good_row_units(input_batches(spec, batch_size), mix_salt(mix_seed, name))


class SegmentRunner:
    """Applies one segment's stages to a batch: an optional barrier decision, then the row-local chain.

    Used as a plain function in Ray tasks (cheap operators) or as the class of an actor pool
    (operators with a heavy `setup()`, which then runs once per actor, not once per batch).
    """

    def __init__(self, seg_index: int, barrier: Stage | None, chain: list[Stage], dirs: RunDirs,
                 prepared: frozenset[str] = frozenset()):
        self.seg_index = seg_index
        self.barrier = barrier
        self.chain = chain
        self.dirs = dirs
        self.prepared = prepared  # stage labels whose setup() ran on the driver (state broadcast)
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            # the barrier's decider and the `prepared` operators arrive with their state (Ray
            # ships the runner once per actor through the object store); the others load it here
            for st in self.chain:
                if st.label not in self.prepared:
                    st.op.setup()
            self._ready = True

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        self.setup()
        if batch.num_rows == 0:
            return
        key = batch_key(batch)
        stats: dict[str, StageStats] = {}
        rejected = []
        if self.barrier is not None:
            batch, rej = apply_stage(self.barrier, batch, stats.setdefault(self.barrier.label, StageStats()))
            if rej is not None:
                rejected.append(rej)
        out, more = apply_chain(self.chain, batch, stats)
        rejected.extend(more)
        if rejected:
            writer = RejectWriter(Path(self.dirs.rejects), prefix=f"seg{self.seg_index}-{key}")
            for r in rejected:
                writer.add(r.table, r.stage, r.reason, r.detail)
            writer.close()
        self.dirs.write_stats(f"seg{self.seg_index}-{key}", {k: v.as_dict() | {"seconds": v.seconds}
                                                             for k, v in stats.items()})
        if out.num_rows:
            yield out


def run_segment_batch(batch: pa.Table, runner: SegmentRunner) -> Iterator[pa.Table]:
    """Task-pool entry point (Ray Data wants a function or a class; the runner is a plain object)."""
    yield from runner(batch)


class SegmentActor:
    """Actor-pool entry point: `setup()` of heavy operators runs once, when the actor starts."""

    def __init__(self, runner: SegmentRunner):
        self.runner = runner
        self.runner.setup()

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        yield from self.runner(batch)


def merge_stats(stats_dir: Path, prefix: str) -> dict[str, StageStats]:
    """Sum the stats files tasks left for one segment."""
    total: dict[str, StageStats] = {}
    for f in sorted(stats_dir.glob(f"{prefix}-*.json")):
        for label, s in json.loads(f.read_text()).items():
            total.setdefault(label, StageStats()).merge(
                StageStats(s["rows_in"], s["rows_out"], dict(s["rejected"]), float(s["seconds"])))
    return total

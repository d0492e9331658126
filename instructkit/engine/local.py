"""The local engine: streams Arrow batches through the operators on one machine.

Shape of a run:
  read (+ mix sampling)  ->  segment 0: row-local ops  ->  [spill]
  -> barrier 1 (fit on the spill, then decide per batch) -> row-local ops -> [spill] -> ...
  -> train/eval split -> Parquet shards -> output steps (pack, gate, report) -> manifest.

Row-local ops stream with bounded memory (optionally in a process pool, results kept in input
order so the output is deterministic). Barriers see the whole dataset through a Parquet spill,
which is also the checkpoint that `resume=True` restarts from.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from instructkit.config import PipelineConfig
from instructkit.engine import manifest as mf
from instructkit.engine.finish import build_manifest, finish_run
from instructkit.engine.reading import (READ_STAGE, good_row_units, input_batches, input_name, mix_salt,
                                        new_input_info, route_batch, sampling_limit)
from instructkit.engine.sampling import eval_mask
from instructkit.engine.stage import Rejected, Stage, StageStats, apply_chain, apply_stage
from instructkit.io.writers import RejectWriter, ShardedParquetWriter, drop_provenance
from instructkit.ipc import from_ipc, to_ipc
from instructkit.progress import progress
OWNED = ("data", "rejects", "_work", "quarantine", "packed", "manifest.json")


@dataclass
class Segment:
    """A barrier (or the reader, for segment 0) followed by the row-local stages after it."""

    index: int
    barrier: Stage | None
    chain: list[Stage] = field(default_factory=list)


def plan(stages: list[Stage]) -> tuple[list[Segment], list[Stage]]:
    segments = [Segment(0, None)]
    outputs = []
    for st in stages:
        if st.kind == "output":
            outputs.append(st)
        elif st.kind == "barrier":
            segments.append(Segment(len(segments), st))
        else:
            segments[-1].chain.append(st)
    return segments, outputs


# ---------------------------------------------------------------- worker pool for row-local chains
_WORKER_CHAIN: list[Stage] = []


def _worker_init(chain: list[Stage]) -> None:
    global _WORKER_CHAIN
    _WORKER_CHAIN = chain
    for st in chain:
        st.op.setup()


def _worker_run(buf: pa.Buffer) -> tuple[pa.Buffer, list[tuple[str, pa.Buffer, pa.Array, pa.Array | None]],
                                         dict[str, StageStats]]:
    stats: dict[str, StageStats] = {}
    out, rej = apply_chain(_WORKER_CHAIN, from_ipc(buf), stats)
    return to_ipc(out), [(r.stage, to_ipc(r.table), r.reason, r.detail) for r in rej], stats


def map_chain(
    chain: list[Stage], batches: Iterable[pa.Table], workers: int, stats: dict[str, StageStats]
) -> Iterator[tuple[pa.Table, list[Rejected]]]:
    """Apply a chain of row-local stages to a stream of batches, in order, maybe in parallel."""
    if not chain:
        for b in batches:
            yield b, []
        return
    if workers <= 1:
        for st in chain:
            st.op.setup()
        for b in batches:
            out, rej = apply_chain(chain, b, stats)
            yield out, rej
        return
    # spawn, not fork: forking a process that already runs Arrow/Polars thread pools can deadlock.
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(chain,)) as pool:
        pending: list[Future] = []
        it = iter(batches)
        exhausted = False
        while True:
            while not exhausted and len(pending) < workers * 2:
                try:
                    pending.append(pool.submit(_worker_run, to_ipc(next(it))))
                except StopIteration:
                    exhausted = True
            if not pending:
                break
            out, rej, st = pending.pop(0).result()
            for label, s in st.items():
                stats.setdefault(label, StageStats()).merge(s)
            yield from_ipc(out), [Rejected(stage, from_ipc(t), reason, detail) for stage, t, reason, detail in rej]


# ---------------------------------------------------------------- reading
def _with_provenance(table: pa.Table, name: str) -> pa.Table:
    """In-memory tables (Python API) get the columns readers attach."""
    from instructkit.schema import provenance_schema

    n = table.num_rows
    cols = {}
    for f in provenance_schema():
        if f.name in table.column_names:
            cols[f.name] = table.column(f.name).cast(f.type)
        elif f.name == "source":
            cols[f.name] = pa.array([name] * n, pa.string())
        elif f.name == "_line":
            cols[f.name] = pa.array(np.arange(1, n + 1), pa.int64())
        elif f.name == "_file":
            cols[f.name] = pa.array([f"<{name}>"] * n, pa.string())
        elif f.name == "meta":
            cols[f.name] = pa.array(["{}"] * n, pa.string())
        else:
            cols[f.name] = pa.nulls(n, f.type)
    if "id" not in table.column_names:
        from instructkit.messages import content_ids

        cols["id"] = content_ids(cols["messages"])
    return pa.table(cols, schema=provenance_schema())


@dataclass
class InMemoryInput:
    """A pyarrow Table (canonical columns) used as a pipeline input from Python."""

    table: pa.Table
    name: str = "memory"
    weight: float | None = None
    cap: int | None = None

    def batches(self, batch_size: int) -> Iterator[pa.Table]:
        full = _with_provenance(self.table, self.name)
        for start in range(0, max(full.num_rows, 1), batch_size):
            piece = full.slice(start, batch_size)
            if piece.num_rows:
                yield piece


class Reader:
    """Yields good rows from every input; routes malformed and sampled-out rows to rejects."""

    def __init__(self, cfg: PipelineConfig, rejects: RejectWriter):
        self.cfg = cfg
        self.rejects = rejects
        self.read = 0
        self.per_input: list[dict[str, Any]] = []

    def __iter__(self) -> Iterator[pa.Table]:
        for spec in self.cfg.inputs:
            name = input_name(spec)
            source = input_batches(spec, self.cfg.engine.batch_size)
            salt = mix_salt(self.cfg.mix_seed, name)
            limit = sampling_limit(getattr(spec, "weight", None), getattr(spec, "cap", None),
                                   lambda: good_row_units(source, salt))
            info = new_input_info(spec, name)
            self.per_input.append(info)
            for batch in source():
                self.read += batch.num_rows
                batch = route_batch(batch, self.rejects, info, salt, limit)
                if batch.num_rows:
                    yield batch


# ---------------------------------------------------------------- the run
def _workers(cfg: PipelineConfig) -> int:
    w = cfg.engine.workers
    if w == "auto":
        return max(1, min(os.cpu_count() or 1, 8))
    return int(w)


def _spill_reader(directory: Path, batch_size: int) -> Callable[[], Iterator[pa.Table]]:
    files = sorted(directory.glob("part-*.parquet"))

    def gen() -> Iterator[pa.Table]:
        for f in files:
            pf = pq.ParquetFile(f)
            for rb in pf.iter_batches(batch_size=batch_size):
                yield pa.Table.from_batches([rb])

    return gen


def _clean_output(out: Path) -> None:
    for name in OWNED:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


class FinalWriter:
    """Splits kept rows into train/eval by id and writes the Parquet shards."""

    def __init__(self, cfg: PipelineConfig, data_dir: Path):
        self.cfg = cfg
        self.writers = {
            "train": ShardedParquetWriter(data_dir, "train", cfg.output.shard_rows),
            "eval": ShardedParquetWriter(data_dir, "eval", cfg.output.shard_rows),
        }

    def write(self, table: pa.Table) -> None:
        table = drop_provenance(table)
        if self.cfg.split.eval_ratio > 0:
            is_eval = eval_mask(table.column("id"), self.cfg.split.eval_ratio, self.cfg.split.seed)
            self.writers["eval"].write(table.filter(pa.array(is_eval)))
            self.writers["train"].write(table.filter(pa.array(~is_eval)))
        else:
            self.writers["train"].write(table)

    def close(self) -> list[Path]:
        for w in self.writers.values():
            w.close()
        return [f for w in self.writers.values() for f in w.files]

    @property
    def counts(self) -> dict[str, int]:
        return {k: w.rows for k, w in self.writers.items()}


def run(cfg: PipelineConfig, resume: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Run a pipeline locally; return the manifest (also written to OUT/manifest.json)."""
    out = Path(cfg.output.dir)
    work = out / "_work"
    chash = mf.config_hash(cfg.raw)
    segments, outputs = plan(cfg.stages)
    started = time.time()
    workers = _workers(cfg)

    start_seg = 0
    prior: dict[str, Any] = {}
    if resume:
        for seg in reversed(segments[:-1]):
            done = work / f"seg{seg.index}" / "_DONE.json"
            if done.exists():
                prior = json.loads(done.read_text())
                if prior.get("config_hash") == chash:
                    start_seg = seg.index + 1
                    break
                prior = {}
    if start_seg == 0:
        _clean_output(out)
    else:
        for name in ("data", "quarantine", "packed", "manifest.json"):
            p = out / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        for seg in segments[start_seg:]:
            for f in (out / "rejects").glob(f"seg{seg.index}-*.parquet"):
                f.unlink()
            shutil.rmtree(work / f"seg{seg.index}", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    stats: dict[str, StageStats] = {}
    for label, s in prior.get("stats", {}).items():
        stats[label] = StageStats(s["rows_in"], s["rows_out"], dict(s["rejected"]), s["seconds"])
    read_count = prior.get("read", 0)
    per_input = prior.get("inputs", [])
    final = FinalWriter(cfg, out / "data")

    for seg in segments[start_seg:]:
        is_last = seg.index == len(segments) - 1
        rejects = RejectWriter(out / "rejects", prefix=f"seg{seg.index}")
        spill = None if is_last else ShardedParquetWriter(work / f"seg{seg.index}", "part", 1_000_000)
        sink = final if is_last else spill
        desc = "read" if seg.barrier is None else seg.barrier.op.name
        bar = progress(desc=f"[{seg.index}] {desc}", unit="rows", disable=not show_progress)

        if seg.barrier is None:
            reader = Reader(cfg, rejects)
            source: Iterable[pa.Table] = reader
        else:
            reader = None
            op = seg.barrier.op
            prev = _spill_reader(work / f"seg{seg.index - 1}", cfg.engine.batch_size)
            bst = stats.setdefault(seg.barrier.label, StageStats())
            t0 = time.perf_counter()
            op.setup()
            op.fit(prev)
            bst.seconds += time.perf_counter() - t0

            def barrier_batches(prev=prev, seg=seg, bst=bst, rejects=rejects) -> Iterator[pa.Table]:
                for b in prev():
                    kept, rej = apply_stage(seg.barrier, b, bst)
                    if rej is not None:
                        rejects.add(rej.table, rej.stage, rej.reason, rej.detail)
                    yield kept

            source = barrier_batches()

        for table, rejected in map_chain(seg.chain, source, workers, stats):
            for r in rejected:
                rejects.add(r.table, r.stage, r.reason, r.detail)
            sink.write(table)
            bar.update(table.num_rows + sum(r.table.num_rows for r in rejected))
        bar.close()
        rejects.close()
        if reader is not None:
            read_count = reader.read
            per_input = reader.per_input
            stats[READ_STAGE] = StageStats(reader.read, reader.read - sum(i["bad_rows"] for i in per_input), {
                "malformed": sum(i["bad_rows"] for i in per_input)} if any(i["bad_rows"] for i in per_input) else {})
        if spill is not None:
            spill.close()
            (work / f"seg{seg.index}").mkdir(parents=True, exist_ok=True)
            (work / f"seg{seg.index}" / "_DONE.json").write_text(json.dumps({
                "config_hash": chash, "read": read_count, "inputs": per_input,
                "stats": {k: v.as_dict() for k, v in stats.items()},
            }))

    data_files = final.close()
    engine = {"name": "local", "workers": workers, "batch_size": cfg.engine.batch_size,
              "resumed_from_segment": start_seg}
    manifest = build_manifest(cfg, out, engine, stats, read_count, per_input, data_files, final.counts)
    return finish_run(cfg, manifest, outputs, out, data_files, started)

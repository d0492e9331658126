"""The Ray engine: the same operators as the local engine, executed with Ray Data.

Shape of a run (same segments as `local.plan`):
  one Ray task per input (our own readers, so formats and bad rows behave identically)
  -> segment 0: `map_batches` of the row-local chain (tasks; an actor pool when an operator
     has a heavy `setup()`)
  -> barrier: materialize, then either a distributed strategy (exact / MinHash dedup,
     decontamination: see `ray_dedup.py`) that produces a per-row decision, or the fallback:
     the operator's own `fit`/`process` on the driver, recorded in the manifest
  -> the next segment's chain ... -> ordered stream to the driver -> the local engine's
     `FinalWriter` (same train/eval split, same shards) -> output steps -> manifest.

Results equal the local engine's row for row: Ray Data keeps block order
(`preserve_order`), every stage goes through `stage.apply_chain`, and rejects/stats are
written by the tasks under names that make Ray's retries idempotent (`ray_tasks`).
Multi-node runs need `output.dir` on storage every node mounts (NFS, a shared volume).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from instructkit.config import PipelineConfig
from instructkit.engine.local import (
    FinalWriter,
    InMemoryInput,
    _clean_output,
    plan,
)
from instructkit.engine.ray_tasks import (
    ROWPOS,
    RunDirs,
    SegmentActor,
    SegmentRunner,
    input_units,
    merge_stats,
    read_one_input,
    run_segment_batch,
)
from instructkit.engine.finish import build_manifest, finish_run
from instructkit.engine.reading import READ_STAGE, input_name, sampling_limit
from instructkit.engine.stage import Stage, StageStats, apply_stage
from instructkit.errors import ConfigError, InstructkitError
from instructkit.io.writers import RejectWriter, ShardedParquetWriter
from instructkit.ops.base import Operator
from instructkit.progress import progress

#: Ray re-runs a task whose worker died this many times (actors: restarts) before failing the run.
MAX_RETRIES = 3

#: Operators whose setup() builds a read-only index: built once on the driver, then broadcast to
#: the actors through the object store instead of being rebuilt by every worker.
BROADCAST_SETUP = ("decontaminate",)


def _require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("engine: ray is not installed; install it with: pip install 'instructkit[ray]'") from None
    return ray


def connect(address: str | None, num_cpus: int | None = None, object_store_mb: int | None = None) -> bool:
    """Attach to a running cluster (`auto`, `ray://host:10001`) or start a local one.

    Returns True when this call started Ray (so the run shuts it down again).
    """
    ray = _require_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        try:
            ray.init(address=address, **{k: v for k, v in kwargs.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"engine.address: cannot connect to Ray at {address!r} ({str(exc).splitlines()[0]})") from None
        return True
    if num_cpus:
        kwargs["num_cpus"] = num_cpus
    if object_store_mb:
        kwargs["object_store_memory"] = object_store_mb * 1024 * 1024
    ray.init(**kwargs)
    return True


def _configure_data_context(show_progress: bool) -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # output order == local engine's order
    ctx.enable_progress_bars = bool(show_progress and os.environ.get("INSTRUCTKIT_QUIET") != "1")
    ctx.print_on_execution_start = False
    # The dedup groupbys shuffle small fixed-width rows. Ray's default hash shuffle starts a pool of
    # aggregator actors (seconds of fixed cost, ~400 MB each); the task-based sort shuffle measured
    # 3-20x faster on a 2-CPU cluster. INSTRUCTKIT_RAY_SHUFFLE=hash|shuffle_v2 picks another strategy.
    choice = os.environ.get("INSTRUCTKIT_RAY_SHUFFLE")
    aliases = {"sort": "sort_shuffle_pull_based", "hash": "hash_shuffle"}
    try:
        from ray.data.context import ShuffleStrategy

        ctx.shuffle_strategy = ShuffleStrategy(aliases.get(choice or "sort", choice))
    except (ImportError, ValueError, AttributeError):
        if choice:  # asked for explicitly: say it does not exist; otherwise keep Ray's default
            raise ConfigError(f"INSTRUCTKIT_RAY_SHUFFLE={choice!r}: not a shuffle strategy this Ray version "
                              f"knows (sort, hash, shuffle_v2)") from None
    if not ctx.enable_progress_bars:
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def _has_heavy_setup(op: Operator) -> bool:
    return type(op).setup is not Operator.setup


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _unwrap(exc: BaseException) -> BaseException:
    """Ray wraps operator errors (RayTaskError/UserCodeException); surface our own error types."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, InstructkitError):
            cause = getattr(e, "cause", None)
            err = cause if isinstance(cause, InstructkitError) else e
            # Ray Data appends its retry advice to the message; ours are one line by contract
            if err.args and isinstance(err.args[0], str) and "\n" in err.args[0]:
                err.args = (err.args[0].splitlines()[0],) + tuple(err.args[1:])
            return err
        todo.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
    return exc


def run(cfg: PipelineConfig, address: str | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Run a pipeline on Ray; return the manifest (also written to OUT/manifest.json)."""
    _require_ray()
    workers = cfg.engine.workers
    num_cpus = int(workers) if isinstance(workers, int) and workers > 1 else None
    started_here = connect(address or cfg.engine.address, num_cpus=num_cpus)
    try:
        _configure_data_context(show_progress)
        return _run(cfg, address or cfg.engine.address, show_progress)
    except Exception as exc:  # noqa: BLE001 - re-raised, only unwrapped
        unwrapped = _unwrap(exc)
        if unwrapped is exc:
            raise
        raise unwrapped from None
    finally:
        if started_here:
            import ray

            ray.shutdown()


def _read_dataset(cfg: PipelineConfig, dirs: RunDirs):
    """One read task per input; `cap` thresholds are computed first, in parallel, like the local Reader."""
    import ray
    import ray.data

    bs = cfg.engine.batch_size
    names = [input_name(s) for s in cfg.inputs]
    inputs = list(cfg.inputs)
    units_task = ray.remote(input_units).options(max_retries=MAX_RETRIES)
    pending = {i: units_task.remote(spec, names[i], cfg.mix_seed, bs, os.getcwd())
               for i, spec in enumerate(inputs) if getattr(spec, "cap", None) is not None}
    limits = [sampling_limit(getattr(spec, "weight", None), getattr(spec, "cap", None),
                             lambda i=i: ray.get(pending[i]))
              for i, spec in enumerate(inputs)]
    items = ray.data.from_items([{"input": i} for i in range(len(inputs))], override_num_blocks=max(1, len(inputs)))
    with _quiet_deprecations():
        return items.map_batches(
            read_one_input, batch_size=1, batch_format="pyarrow",
            fn_kwargs={"inputs": ray.put(inputs), "names": names, "limits": limits, "mix_seed": cfg.mix_seed,
                       "batch_size": bs, "dirs": dirs, "cwd": os.getcwd()},
            # a remote-args function keeps Ray from fusing the read into the first chain, so one
            # big input file still fans out to every CPU for the row-local work
            ray_remote_args_fn=_read_remote_args,
        )


def _read_remote_args() -> dict[str, Any]:
    return {"max_retries": MAX_RETRIES}


@contextlib.contextmanager
def _quiet_deprecations() -> Iterator[None]:
    """Ray 2.5x-2.6x deprecate per-call remote args (`max_retries`, `ray_remote_args_fn`) in favour of
    a newer API; we still need them for finite retries and unfused reads on the versions we support."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in Ray.*")
        yield


def _map_segment(ds, runner: SegmentRunner, cfg: PipelineConfig, ops: list[Operator]):
    """`map_batches` of one segment: tasks, or an actor pool when an operator has a heavy setup()."""
    import ray.data

    bs = cfg.engine.batch_size
    res = segment_resources(cfg, ops)
    with _quiet_deprecations():
        if any(_has_heavy_setup(op) for op in ops):
            n = max(1, int(_cluster_cpus() // max(res.get("num_cpus", 1), 1)))
            return ds.map_batches(
                SegmentActor, fn_constructor_args=(runner,), batch_size=bs, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=n),
                max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES, **res,
            )
        return ds.map_batches(run_segment_batch, fn_args=(runner,), batch_size=bs, batch_format="pyarrow",
                              max_retries=MAX_RETRIES, **res)


def segment_resources(cfg: PipelineConfig, ops: list[Operator]) -> dict[str, float]:
    """Ray resources for one segment's tasks/actors: the largest request of its operators.

    Read from `engine.resources` ({operator name: {num_cpus, num_gpus, memory}}) when the config
    has it. A segment's operators run fused in one task, so they share one request.
    """
    wanted = getattr(cfg.engine, "resources", None) or {}
    if not isinstance(wanted, dict):
        raise ConfigError("engine.resources: expected a mapping {operator name: {num_cpus, num_gpus, memory}}")
    out: dict[str, float] = {}
    for op in ops:
        req = wanted.get(op.name) or {}
        for key, value in req.items():
            if key not in ("num_cpus", "num_gpus", "memory"):
                raise ConfigError(f"engine.resources.{op.name}: unknown resource '{key}' "
                                  f"(expected num_cpus, num_gpus or memory)")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"engine.resources.{op.name}.{key}: expected a number >= 0, got {value!r}")
            out[key] = max(out.get(key, 0), float(value))
    return out


def _fallback_barrier(stage: Stage, mat, cfg: PipelineConfig, seg_index: int, work: Path, rejects_dir: Path,
                      stats: dict[str, StageStats]):
    """A barrier without a distributed strategy: its own fit/process on the driver, as in the local engine.

    The kept rows are spilled to Parquet and read back as a Ray Dataset for the next chain.
    """
    import ray.data

    bs = cfg.engine.batch_size

    def batches() -> Iterator[pa.Table]:
        for b in mat.iter_batches(batch_size=bs, batch_format="pyarrow"):
            if b.num_rows:
                yield b

    bst = stats.setdefault(stage.label, StageStats())
    t0 = time.perf_counter()
    stage.op.setup()
    stage.op.fit(batches)
    bst.seconds += time.perf_counter() - t0
    spill = ShardedParquetWriter(work / f"seg{seg_index}", "part", 1_000_000)
    rejects = RejectWriter(rejects_dir, prefix=f"seg{seg_index}-barrier")
    for b in batches():
        kept, rej = apply_stage(stage, b, bst)
        if rej is not None:
            rejects.add(rej.table, rej.stage, rej.reason, rej.detail)
        spill.write(kept)
    spill.close()
    rejects.close()
    if not spill.files:
        return None
    return ray.data.read_parquet([str(f) for f in spill.files], shuffle=None)


def _run(cfg: PipelineConfig, address: str | None, show_progress: bool) -> dict[str, Any]:
    import ray

    from instructkit.engine import ray_dedup

    out = Path(cfg.output.dir).resolve()
    work = out / "_work"
    segments, outputs = plan(cfg.stages)
    started = time.time()
    _clean_output(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rejects").mkdir(exist_ok=True)
    dirs = RunDirs(rejects=str(out / "rejects"), stats=str(work / "ray_stats"))
    stats: dict[str, StageStats] = {}
    barrier_modes: dict[str, dict[str, Any]] = {}
    broadcast: dict[str, float] = {}  # stage label -> seconds its setup() took on the driver

    ds = _read_dataset(cfg, dirs)
    for seg in segments:
        barrier_stage = None
        if seg.barrier is not None:
            mat = ds.materialize() if ds is not None else None
            t0 = time.perf_counter()
            strategy = ray_dedup.strategy_for(seg.barrier.op)
            if mat is None:
                barrier_modes[seg.barrier.label] = {"mode": "skipped", "reason": "no rows reach this barrier"}
                ds = None
            elif strategy is not None:
                decider, info = strategy(seg.barrier.op, mat, cfg)
                barrier_stage = Stage(seg.barrier.index, decider, seg.barrier.annotate_only)
                barrier_modes[seg.barrier.label] = {"mode": "distributed", **info}
                stats.setdefault(seg.barrier.label, StageStats()).seconds += time.perf_counter() - t0
                ds = mat
            else:
                ds = _fallback_barrier(seg.barrier, mat, cfg, seg.index, work, out / "rejects", stats)
                barrier_modes[seg.barrier.label] = {
                    "mode": "fallback",
                    "note": "no distributed strategy for this operator: fit and process ran on the driver",
                    "seconds": round(time.perf_counter() - t0, 3)}
        if ds is not None and (seg.chain or barrier_stage is not None):
            prepared = frozenset(st.label for st in seg.chain if st.op.name in BROADCAST_SETUP)
            for st in seg.chain:
                if st.label in prepared:
                    t0 = time.perf_counter()
                    st.op.setup()
                    broadcast[st.label] = round(time.perf_counter() - t0, 3)
            runner = SegmentRunner(seg.index, barrier_stage, seg.chain, dirs, prepared)
            ops = [st.op for st in seg.chain]
            ds = _map_segment(ds, runner, cfg, ops)

    final = FinalWriter(cfg, out / "data")
    bar = progress(desc="write", unit="rows", disable=not show_progress)
    if ds is not None:
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            if ROWPOS in table.column_names:
                table = table.drop_columns([ROWPOS])
            final.write(table)
            bar.update(table.num_rows)
    bar.close()
    data_files = final.close()

    # stats the tasks left behind: reading, then each segment
    stats_dir = Path(dirs.stats)
    per_input = [json.loads(f.read_text()) for f in sorted(stats_dir.glob("read-*.json"))]
    read_count = sum(i["rows_read"] for i in per_input)
    bad = sum(i["bad_rows"] for i in per_input)
    stats[READ_STAGE] = StageStats(read_count, read_count - bad, {"malformed": bad} if bad else {})
    for seg in segments:
        for label, s in merge_stats(stats_dir, f"seg{seg.index}").items():
            stats.setdefault(label, StageStats()).merge(s)

    resources = ray.cluster_resources()
    engine = {"name": "ray", "address": address or "local", "batch_size": cfg.engine.batch_size,
              "cluster_cpus": int(resources.get("CPU", 0)), "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
              "barriers": barrier_modes, "broadcast_setup": broadcast, "resumed_from_segment": 0}
    manifest = build_manifest(cfg, out, engine, stats, read_count, per_input, data_files, final.counts)
    return finish_run(cfg, manifest, outputs, out, data_files, started)


__all__ = ["run", "connect", "InMemoryInput"]

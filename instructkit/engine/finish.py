"""The end of a run, shared by both engines: manifest, accounting, output steps, quarantine.

Keeping this in one place is what makes "same rows, same rejects, same manifest" between the
local and Ray engines a property of the code rather than of two copies kept in step by hand.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from instructkit.config import PipelineConfig
from instructkit.engine import manifest as mf
from instructkit.engine.stage import Stage, StageStats
from instructkit.errors import GateFailed
from instructkit.io.writers import count_parquet_rows
from instructkit.ops.base import OutputContext


def stage_entry(st: Stage, stats: dict[str, StageStats]) -> dict[str, Any]:
    s = stats.get(st.label, StageStats())
    return {"stage": st.label, "op": st.op.name, "kind": st.kind, "annotate_only": st.annotate_only,
            "options": st.op.config(), **s.as_dict()}


def rejects_by_stage(files: list[Path]) -> dict[str, dict[str, int]]:
    import polars as pl

    if not files:
        return {}
    df = pl.concat([pl.read_parquet(f, columns=["stage", "reason"]) for f in files])
    counts = df.group_by(["stage", "reason"]).len().sort(["stage", "len", "reason"], descending=[False, True, False])
    out: dict[str, dict[str, int]] = {}
    for stage, reason, n in counts.iter_rows():
        out.setdefault(stage, {})[reason] = int(n)
    return out


def write_jsonl(files: list[Path]) -> None:
    import polars as pl

    for f in files:
        pl.read_parquet(f).write_ndjson(f.with_suffix(".jsonl"))


def build_manifest(cfg: PipelineConfig, out: Path, engine: dict[str, Any], stats: dict[str, StageStats],
                   read_count: int, per_input: list[dict[str, Any]], data_files: list[Path],
                   by_split: dict[str, int]) -> dict[str, Any]:
    """Count what is on disk (Parquet footers) and check read == written + rejected."""
    reject_files = sorted((out / "rejects").glob("*.parquet"))
    written = count_parquet_rows(data_files)
    rejected = count_parquet_rows(reject_files)
    manifest: dict[str, Any] = {
        "pipeline": cfg.name,
        "recipe": cfg.source_file,
        "config_hash": mf.config_hash(cfg.raw),
        "config": cfg.raw,
        "engine": engine,
        "versions": mf.versions(),
        "inputs": per_input,
        "stages": [stage_entry(st, stats) for st in cfg.stages if st.kind != "output"],
        "rejects_by_stage": rejects_by_stage(reject_files),
        "counts": {"read": read_count, "written": written, "rejected": rejected, "by_split": by_split},
        "files": {"data": [str(p.relative_to(out)) for p in data_files],
                  "rejects": [str(p.relative_to(out)) for p in reject_files]},
    }
    manifest["accounting"] = mf.check_accounting(read_count, written, rejected)
    return manifest


def finish_run(cfg: PipelineConfig, manifest: dict[str, Any], outputs: list[Stage], out: Path,
               data_files: list[Path], started: float) -> dict[str, Any]:
    """Run output steps (pack, gate, report), quarantine on a failed gate, write the manifest."""
    gate_error: GateFailed | None = None
    manifest["outputs"] = {}
    for st in outputs:
        t0 = time.perf_counter()
        ctx = OutputContext(out_dir=out, data_files=data_files, manifest=manifest)
        try:
            st.op.setup()
            result = st.op.finalize(ctx)
        except GateFailed as exc:
            gate_error = exc
            result = getattr(exc, "result", None) or {"gate": {"passed": False, "message": str(exc)}}
        result = dict(result or {})
        if "gate" in result:
            manifest["gate"] = result.pop("gate")
        manifest["outputs"][st.label] = {**result, "seconds": round(time.perf_counter() - t0, 3)}
    manifest["seconds"] = round(time.time() - started, 3)
    manifest["status"] = "ok"
    if gate_error is not None:
        from instructkit.quality.gate import publish_or_quarantine

        manifest["quarantined"] = publish_or_quarantine(out, passed=False)
        manifest["status"] = "gate_failed"
        manifest["files"]["data"] = [f"quarantine/{p}" for p in manifest["files"]["data"]]
    mf.write_manifest(out / "manifest.json", manifest)
    if not cfg.output.keep_work:
        shutil.rmtree(out / "_work", ignore_errors=True)
    if cfg.output.jsonl and gate_error is None:
        write_jsonl(data_files)
    if gate_error is not None:
        raise gate_error
    return manifest

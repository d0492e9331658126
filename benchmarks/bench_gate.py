"""Quality gate + report on a large synthetic SFT output, beside great-expectations run naively.

    python benchmarks/bench_gate.py            # 1M rows
    python benchmarks/bench_gate.py --quick    # 100k rows
    python benchmarks/bench_gate.py --pipeline # also time a real pipeline run over the same rows

What is compared (same data, same run):
- instructkit: `stats.compute` (Polars) + gate (great-expectations on the statistics table / a
  20k-row text sample; `mode: auto`) + report.html/report.json + README.md card. Also the gate
  in `mode: full` (GX row-level expectations on a narrow per-row frame) for reference.
- naive GX: the whole table loaded into pandas, per-row columns derived in pandas, and the same
  expectations (incl. the PII regexes over all text) validated by great-expectations on every row.
- with --pipeline: `instructkit run` (canonical Parquet in -> normalize -> drop_empty_turns ->
  quality_gate -> report); the manifest gives the pipeline's own time and the output steps' time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

WORDS = np.array("the a cat sat on mat data model token learn train answer question water river light stone "
                 "quick brown fox jumps over lazy dog because therefore however simple explain".split())


def synth(n: int, seed: int = 0) -> pl.DataFrame:
    """n chat rows with realistic-ish length spread, tokens, languages, duplicate clusters and flags."""
    rng = np.random.default_rng(seed)
    pool_n = 4096
    lens = np.clip(rng.lognormal(3.6, 0.8, pool_n).astype(int), 3, 600)
    pool = [" ".join(rng.choice(WORDS, size=k)) for k in lens]
    ulens = np.clip(rng.lognormal(2.6, 0.6, pool_n).astype(int), 2, 120)
    upool = [" ".join(rng.choice(WORDS, size=k)) for k in ulens]
    a_idx = rng.integers(0, pool_n, n)
    u_idx = rng.integers(0, pool_n, n)
    i = np.arange(n)
    df = pl.DataFrame({"_i": i, "_a": a_idx, "_u": u_idx})
    answers = pl.Series("a", pool)[df["_a"]]
    users = pl.Series("u", upool)[df["_u"]]
    df = df.with_columns(answers.alias("answer"), users.alias("user"))
    n_label = (lens[a_idx] * 1.3).astype(np.int32) + 2
    n_prompt = (ulens[u_idx] * 1.3).astype(np.int32) + 12
    lang = np.where(rng.random(n) < 0.96, "en", rng.choice(["de", "fr", "es", "zh-cn"], n))
    size = np.where(rng.random(n) < 0.05, rng.integers(2, 8, n), 1).astype(np.int32)
    return df.select(
        pl.format("syn-{}", pl.col("_i")).alias("id"),
        pl.concat_list([
            pl.struct(role=pl.lit("user"), content=pl.format("Q{}: {}", pl.col("_i"), pl.col("user"))),
            pl.struct(role=pl.lit("assistant"), content=pl.col("answer")),
        ]).alias("messages"),
        pl.lit("synthetic").alias("source"),
        pl.lit("{}").alias("meta"),
        pl.Series("n_tokens", n_label + n_prompt),
        pl.Series("n_label_tokens", n_label),
        pl.Series("lang_user", lang),
        pl.Series("dup_cluster_size", size),
        pl.lit(None, dtype=pl.String).alias("contam_benchmark"),
    )


def write_output(out: Path, df: pl.DataFrame, shard_rows: int = 250_000) -> None:
    (out / "data").mkdir(parents=True)
    (out / "rejects").mkdir()
    for k in range(0, df.height, shard_rows):
        df.slice(k, shard_rows).write_parquet(out / "data" / f"train-{k // shard_rows:05d}.parquet")
    n_rej = df.height // 20
    rej = df.head(n_rej).select("id", "messages").with_columns(
        pl.lit("03_near_dedup").alias("stage"), pl.lit("near_duplicate").alias("reason"), pl.lit(None, pl.String).alias("detail"),
        pl.lit("input.jsonl").alias("_file"), pl.int_range(pl.len()).alias("_line"))
    rej.write_parquet(out / "rejects" / "seg0-00000.parquet")
    read = df.height + n_rej
    manifest = {"pipeline": "bench_synthetic", "counts": {"read": read, "written": df.height, "rejected": n_rej},
                "stages": [{"stage": "03_near_dedup", "op": "near_dedup", "rows_in": read, "rows_out": df.height,
                            "rejected": {"near_duplicate": n_rej}}],
                "rejects_by_stage": {"03_near_dedup": {"near_duplicate": n_rej}}}
    (out / "manifest.json").write_text(json.dumps(manifest))


def ours(out: Path, mode: str = "auto") -> tuple[float, dict]:
    from instructkit.quality import card, gate, report, stats

    t0 = time.perf_counter()
    manifest = stats.load_manifest(out)
    files = stats.data_files(out)
    st = stats.compute(out, manifest, files)
    t_stats = time.perf_counter() - t0
    suite = gate.load_suite("sft_default", mode=mode)
    g = gate.run_gate(suite, st, files)
    t_gate = time.perf_counter() - t0 - t_stats
    manifest["gate"] = g
    report.write(out, st, manifest)
    card.write(out, st, manifest)
    total = time.perf_counter() - t0
    return total, {"stats_s": round(t_stats, 2), "gate_s": round(t_gate, 2), "report_card_s": round(total - t_stats - t_gate, 2),
                   "passed": g["passed"], "mode": g["mode"], "modes_used": g["modes_used"]}


def naive_gx(out: Path) -> tuple[float, dict]:
    """What a user would write with GX alone: pandas table, per-row derived columns, full validation."""
    import great_expectations as gx
    import pandas as pd
    import pyarrow.parquet as pq

    from instructkit.quality.gate import PII_PATTERNS

    t0 = time.perf_counter()
    df = pd.concat([pq.read_table(f).to_pandas() for f in sorted((out / "data").glob("*.parquet"))], ignore_index=True)
    df["bad_assistant"] = df["messages"].apply(
        lambda ms: sum(1 for m in ms if m["role"] == "assistant" and not (m["content"] or "").strip())
        + (0 if any(m["role"] == "assistant" for m in ms) else 1))
    df["text"] = df["messages"].apply(lambda ms: "\n".join(m["content"] or "" for m in ms))
    df["is_en"] = (df["lang_user"] == "en").astype(int)
    df["contaminated"] = df["contam_benchmark"].notna().astype(int)
    t_load = time.perf_counter() - t0
    ctx = gx.get_context(mode="ephemeral")
    batch = (ctx.data_sources.add_pandas("naive").add_dataframe_asset("all")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df}))
    E = gx.expectations
    suite = gx.ExpectationSuite(name="naive")
    for e in (E.ExpectTableRowCountToBeBetween(min_value=1), E.ExpectColumnValuesToBeUnique(column="id"),
              E.ExpectColumnValuesToBeBetween(column="bad_assistant", max_value=0),
              E.ExpectColumnValuesToBeBetween(column="n_label_tokens", min_value=1),
              E.ExpectColumnValuesToBeBetween(column="contaminated", max_value=0),
              E.ExpectColumnMeanToBeBetween(column="is_en", min_value=0.5),
              E.ExpectColumnValuesToNotMatchRegexList(column="text", regex_list=[PII_PATTERNS["email"], PII_PATTERNS["api_key"]])):
        suite.add_expectation(e)
    res = batch.validate(suite)
    total = time.perf_counter() - t0
    return total, {"load_derive_s": round(t_load, 2), "validate_s": round(total - t_load, 2), "passed": bool(res.success)}


def pipeline_run(tmp: Path, df: pl.DataFrame) -> dict:
    import subprocess

    import yaml

    src = tmp / "input"
    src.mkdir()
    df.select("id", "messages", "source", "meta").write_parquet(src / "part-0.parquet")
    recipe = {"name": "bench_gate", "inputs": [{"path": str(src / "part-0.parquet"), "format": "canonical"}],
              "steps": ["normalize", "drop_empty_turns", {"quality_gate": {}}, {"report": {}}],
              "output": {"dir": str(tmp / "pipe_out")}}
    (tmp / "r.yaml").write_text(yaml.safe_dump(recipe))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "instructkit", "run", str(tmp / "r.yaml"), "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": r.stderr.strip()[-300:]}
    m = json.loads((tmp / "pipe_out" / "manifest.json").read_text())
    outs = {k: v.get("seconds") for k, v in m.get("outputs", {}).items()}
    return {"wall_s": round(wall, 1), "manifest_seconds": m.get("seconds"), "output_steps_s": outs,
            "gate_passed": m.get("gate", {}).get("passed"), "gate_mode": m.get("gate", {}).get("mode")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k rows instead of 1M")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--no-naive", action="store_true", help="skip the naive great-expectations baseline")
    ap.add_argument("--pipeline", action="store_true", help="also time `instructkit run` on the same rows")
    args = ap.parse_args()
    n = args.rows or (100_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench_gate_"))
    try:
        t0 = time.perf_counter()
        df = synth(n)
        out = tmp / "out"
        write_output(out, df)
        print(f"rows: {n}  (synthetic output written in {time.perf_counter() - t0:.1f}s)")
        import great_expectations  # noqa: F401  (import cost excluded from both sides)

        t, info = ours(out)
        print(f"instructkit gate+report+card (auto):   {t:7.2f}s  {info}")
        tf, infof = ours(out, mode="full")
        print(f"instructkit gate+report+card (full):   {tf:7.2f}s  {infof}")
        if not args.no_naive:
            tn, infon = naive_gx(out)
            print(f"naive great-expectations, full table:  {tn:7.2f}s  {infon}")
            print(f"ratio naive / instructkit(auto): {tn / t:.1f}x   naive / instructkit(full): {tn / tf:.1f}x")
        print(f"target: gate + report on 1M rows < 60s -> {'OK' if t < 60 else 'MISSED'} ({t:.1f}s at {n} rows)")
        if args.pipeline:
            print(f"pipeline (normalize, drop_empty_turns, gate, report): {pipeline_run(tmp, df)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

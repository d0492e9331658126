"""Dataset statistics shared by the quality gate, the HTML report and the dataset card.

Computed once, vectorized (Polars over the Parquet shards, never a Python loop per row), so the
gate can validate a million-row dataset from numbers instead of re-scanning it, and the report
and card show exactly the numbers the gate judged.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: Roles counted in the per-role histograms, in display order.
ROLES = ("system", "user", "assistant", "tool")
#: Percentiles reported for every length distribution (and usable by the gate).
PERCENTILES = (0.5, 0.9, 0.95, 0.99)
HIST_BINS = 30


def data_files(out_dir: Path) -> list[Path]:
    """The published shards, or the quarantined ones when the gate moved them."""
    for sub in ("data", "quarantine/data"):
        files = sorted((out_dir / sub).glob("*.parquet"))
        if files:
            return files
    return []


def load_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "manifest.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        from instructkit.errors import DataError

        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def histogram(values: np.ndarray, bins: int = HIST_BINS) -> dict[str, Any]:
    """Equal-width bins from 0 (or min) to the 99.5th percentile; the rest is an overflow count.

    Clipping at p99.5 keeps one 100k-character outlier from squashing every other bar into bin 0.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"edges": [], "counts": [], "overflow": 0, "n": 0}
    lo = float(min(0.0, values.min()))
    hi = float(np.quantile(values, 0.995))
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    overflow = int((values > hi).sum())
    return {"edges": [round(float(e), 3) for e in edges], "counts": [int(c) for c in counts],
            "overflow": overflow, "n": int(values.size)}


def describe(values: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"n": 0}
    qs = np.quantile(values, PERCENTILES)
    return {"n": int(values.size), "min": float(values.min()), "mean": round(float(values.mean()), 3),
            "max": float(values.max()),
            **{f"p{int(p * 100)}": float(q) for p, q in zip(PERCENTILES, qs)}}


def _turns(lf: pl.LazyFrame) -> pl.DataFrame:
    """One row per turn: row number, role and length; the only explode over the text."""
    return (
        lf.select(pl.col("messages"))
        .with_row_index("_row")
        .explode("messages")
        .select(
            "_row",
            pl.col("messages").struct.field("role").alias("role"),
            pl.col("messages").struct.field("content").str.len_chars().fill_null(0).alias("chars"),
            pl.col("messages").struct.field("content").str.strip_chars().str.len_chars().fill_null(0).alias("stripped"),
            pl.col("messages").is_null().alias("no_turn"),
        )
        .collect()
    )


def main_lang_column(columns: list[str], schema: pl.Schema, preferred: str | None = None) -> str | None:
    if preferred:
        return preferred if preferred in columns else None
    candidates = [c for c in columns if (c == "lang" or c.startswith("lang_")) and schema[c] == pl.String]
    for pick in ("lang", "lang_assistant", "lang_user"):
        if pick in candidates:
            return pick
    return candidates[0] if candidates else None


def contamination_expr(cols: list[str], schema: pl.Schema) -> pl.Expr | None:
    """True where a decontamination column says the row matched a benchmark (None: no such column)."""
    contam = [c for c in cols if c.startswith("contam_")]
    if not contam:
        return None
    c = "contam_benchmark" if "contam_benchmark" in contam else contam[0]
    dt = schema[c]
    if dt == pl.String:
        return pl.col(c).is_not_null() & (pl.col(c) != "")
    if isinstance(dt, pl.List):
        return pl.col(c).list.len().fill_null(0) > 0
    if dt.is_numeric():
        return pl.col(c).fill_null(0) > 0
    return pl.col(c).is_not_null()


def rejects_summary(out_dir: Path, examples_per_reason: int = 3) -> dict[str, Any]:
    """Counts per (stage, reason) and a few example rows per reason from OUT/rejects/."""
    files = sorted((out_dir / "rejects").glob("*.parquet"))
    if not files:
        return {"total": 0, "by_reason": [], "examples": {}}
    lf = pl.scan_parquet(files)
    cols = lf.collect_schema().names()
    counts = (lf.group_by(["stage", "reason"]).len().sort("len", descending=True).collect())
    by_reason = [{"stage": s, "reason": r, "count": int(n)} for s, r, n in counts.iter_rows()]
    keep = [c for c in ("id", "stage", "reason", "detail", "_file", "_line", "messages") if c in cols]
    ex = (lf.select(keep).with_columns(pl.int_range(pl.len()).over("reason").alias("_k"))
          .filter(pl.col("_k") < examples_per_reason).drop("_k").collect())
    examples: dict[str, list[dict[str, Any]]] = {}
    for row in ex.iter_rows(named=True):
        examples.setdefault(row["reason"] or "", []).append(_example(row))
    return {"total": int(counts["len"].sum()), "by_reason": by_reason, "examples": examples}


def _example(row: dict[str, Any], limit: int = 300) -> dict[str, Any]:
    """A displayable row: messages shortened so the report stays small."""
    out = {k: v for k, v in row.items() if k != "messages"}
    msgs = row.get("messages") or []
    out["messages"] = [{"role": m.get("role"), "content": _short(m.get("content"), limit)} for m in msgs if m]
    return out


def _short(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def funnel(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows after each stage, starting from rows read: the run's story in one list."""
    counts = manifest.get("counts", {})
    steps = [{"stage": "read", "rows": int(counts.get("read", 0)), "rejected": {}}]
    for st in manifest.get("stages", []):
        steps.append({"stage": st.get("stage", st.get("op", "?")), "rows": int(st.get("rows_out", 0)),
                      "rejected": dict(st.get("rejected", {}))})
    if counts:
        steps.append({"stage": "written", "rows": int(counts.get("written", 0)), "rejected": {}})
    return steps


def reject_shares(manifest: dict[str, Any], rejects: dict[str, Any] | None = None) -> dict[str, float]:
    """Share of rows read that each reason removed (manifest first, rejects dir as fallback)."""
    read = int(manifest.get("counts", {}).get("read", 0))
    per_reason: dict[str, int] = {}
    by_stage = manifest.get("rejects_by_stage")
    if by_stage:
        for reasons in by_stage.values():
            for reason, n in reasons.items():
                per_reason[reason] = per_reason.get(reason, 0) + int(n)
    elif rejects:
        for r in rejects.get("by_reason", []):
            per_reason[r["reason"]] = per_reason.get(r["reason"], 0) + r["count"]
    if read <= 0:
        return {}
    return {k: round(v / read, 6) for k, v in sorted(per_reason.items(), key=lambda kv: -kv[1])}


def _flag_columns(schema: pl.Schema) -> list[str]:
    """Boolean flags and list-of-string flag columns written by filters (defect_flags, pii_types, ...)."""
    out = []
    for name, dtype in schema.items():
        if name.startswith("_") or name in ("messages", "input_ids", "labels", "truncated"):
            continue
        if dtype == pl.Boolean or (isinstance(dtype, pl.List) and dtype.inner == pl.String):
            out.append(name)
    return out


def compute(out_dir: Path | str, manifest: dict[str, Any] | None = None, files: list[Path] | None = None,
            lang_column: str | None = None, sample_rows: int = 5) -> dict[str, Any]:
    """Every number the report, card and gate use, as plain JSON-able Python."""
    out_dir = Path(out_dir)
    manifest = manifest if manifest is not None else load_manifest(out_dir)
    files = list(files) if files is not None else data_files(out_dir)
    stats: dict[str, Any] = {"out_dir": str(out_dir), "files": [str(p) for p in files]}
    rejects = rejects_summary(out_dir)
    stats["rejects"] = rejects
    stats["funnel"] = funnel(manifest)
    stats["reject_shares"] = reject_shares(manifest, rejects)
    stats["counts"] = manifest.get("counts", {})
    if not files:
        stats.update(rows=0, columns=[], splits={})
        return stats

    lf = pl.scan_parquet(files, include_file_paths="_path") if len(files) else None
    schema = lf.collect_schema()
    cols = [c for c in schema.names() if c != "_path"]
    stats["columns"] = cols
    split_expr = pl.col("_path").str.extract(r"([A-Za-z]+)-\d+\.parquet$", 1)
    splits = lf.select(split_expr.alias("split")).group_by("split").len().collect()
    stats["splits"] = {s or "data": int(n) for s, n in splits.iter_rows()}
    n_rows = int(sum(stats["splits"].values()))
    stats["rows"] = n_rows

    # identity
    if "id" in cols:
        stats["duplicate_ids"] = int(n_rows - lf.select(pl.col("id").n_unique()).collect().item())
        stats["null_ids"] = int(lf.select(pl.col("id").null_count()).collect().item())

    # turns and characters per role
    if "messages" in cols:
        turns = _turns(lf)
        per_row = turns.group_by("_row").agg(
            (~pl.col("no_turn")).sum().alias("turns"),
            ((pl.col("role") == "assistant")).sum().alias("assistant_turns"),
            ((pl.col("role") == "assistant") & (pl.col("stripped") == 0)).sum().alias("empty_assistant_turns"),
        )
        stats["turns"] = {"describe": describe(per_row["turns"].to_numpy()),
                          "counts": {int(k): int(v) for k, v in per_row.group_by("turns").len().sort("turns").iter_rows()}}
        stats["rows_without_assistant"] = int((per_row["assistant_turns"] == 0).sum()) + int(n_rows - per_row.height)
        stats["empty_assistant_turns"] = int(per_row["empty_assistant_turns"].sum())
        stats["rows_with_empty_assistant"] = int((per_row["empty_assistant_turns"] > 0).sum())
        chars = {}
        for role in ROLES:
            v = turns.filter(pl.col("role") == role)["chars"].to_numpy()
            if v.size:
                chars[role] = {"describe": describe(v), "hist": histogram(v)}
        stats["chars_per_role"] = chars
        del turns, per_row

    # tokens: label tokens are the assistant's share, the rest is prompt/template
    if "n_tokens" in cols:
        tok = lf.select([c for c in ("n_tokens", "n_label_tokens") if c in cols]).collect()
        nt = tok["n_tokens"].to_numpy()
        stats["n_tokens"] = {"describe": describe(nt), "hist": histogram(nt)}
        tokens_per_role = {}
        if "n_label_tokens" in cols:
            nl = tok["n_label_tokens"].fill_null(0).to_numpy()
            stats["zero_label_token_rows"] = int((nl <= 0).sum())
            tokens_per_role["assistant (labels)"] = {"describe": describe(nl), "hist": histogram(nl)}
            tokens_per_role["prompt + template"] = {"describe": describe(nt - nl), "hist": histogram(nt - nl)}
        stats["tokens_per_role"] = tokens_per_role
    elif "n_label_tokens" in cols:
        nl = lf.select(pl.col("n_label_tokens").fill_null(0)).collect().to_series().to_numpy()
        stats["zero_label_token_rows"] = int((nl <= 0).sum())

    # languages
    lang_cols = [c for c in cols if (c == "lang" or c.startswith("lang_")) and schema[c] == pl.String]
    languages = {}
    for c in lang_cols:
        vc = lf.group_by(pl.col(c).fill_null("unknown")).len().sort("len", descending=True).collect()
        languages[c] = {str(k): round(int(n) / max(n_rows, 1), 6) for k, n in vc.head(12).iter_rows()}
    stats["languages"] = languages
    main_col = main_lang_column(cols, schema, lang_column)
    if main_col and languages.get(main_col):
        lang, share = next(iter(languages[main_col].items()))
        stats["main_language"] = {"column": main_col, "language": lang, "share": share}

    # duplicate clusters (kept representatives carry the size of the cluster they stand for)
    dup = {}
    for c in cols:
        if c.endswith("dup_cluster_size") or c == "exact_dup_count":
            sizes = lf.select(pl.col(c)).filter(pl.col(c) > 1).group_by(c).len().sort(c).collect()
            dup[c] = {int(s): int(n) for s, n in sizes.iter_rows()}
        elif re.fullmatch(r"(exact_)?dup_cluster", c) and f"{c}_size" not in cols and "exact_dup_count" not in cols:
            sizes = (lf.group_by(c).len().filter(pl.col("len") > 1).group_by("len").len(name="n").sort("len")
                     .collect())
            dup[c] = {int(s): int(n) for s, n in sizes.iter_rows()}
    stats["dup_clusters"] = dup

    # safety columns left by pii / decontamination steps
    if "pii_count" in cols:
        stats["pii_rows"] = int(lf.select((pl.col("pii_count").fill_null(0) > 0).sum()).collect().item())
    contam = contamination_expr(cols, schema)
    if contam is not None:
        stats["contaminated_rows"] = int(lf.select(contam.sum()).collect().item())

    # filter flags with a few example ids
    flags = {}
    for c in _flag_columns(schema):
        if isinstance(schema[c], pl.List):
            vc = (lf.select(pl.col(c), pl.col("id") if "id" in cols else pl.lit(None).alias("id"))
                  .explode(c).drop_nulls(c).group_by(c).agg(pl.len(), pl.col("id").head(3).alias("ids"))
                  .sort("len", descending=True).head(10).collect())
            for flag, n, ids in vc.iter_rows():
                flags[f"{c}:{flag}"] = {"count": int(n), "ids": [str(i) for i in ids]}
        else:
            vc = (lf.filter(pl.col(c).fill_null(False)).select(pl.len(), (pl.col("id") if "id" in cols else pl.lit(""))
                  .head(3).implode().alias("ids")).collect())
            n, ids = vc.row(0)
            if n:
                flags[c] = {"count": int(n), "ids": [str(i) for i in ids]}
    stats["flags"] = dict(sorted(flags.items(), key=lambda kv: -kv[1]["count"])[:15])

    keep = [c for c in ("id", "source", "messages") if c in cols]
    sample = lf.select(keep).head(sample_rows).collect()
    stats["samples"] = [_example(r) for r in sample.iter_rows(named=True)]
    return stats


_CACHE: dict[tuple, dict[str, Any]] = {}


def cached(out_dir: Path | str, manifest: dict[str, Any], files: list[Path], lang_column: str | None = None) -> dict[str, Any]:
    """`compute`, memoized on the files' identity so the gate and report steps of one run share it."""
    out_dir = Path(out_dir)
    watched = list(files) + sorted((out_dir / "rejects").glob("*.parquet"))
    key = (str(out_dir), lang_column, tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in watched if p.exists()),
           json.dumps(manifest.get("counts", {}), sort_keys=True, default=str))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = compute(out_dir, manifest, files, lang_column=lang_column)
    return _CACHE[key]

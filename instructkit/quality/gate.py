"""The quality gate: an expectation suite, run with great-expectations on the finished dataset.

Why great-expectations and not a few `assert`s: its results are a standard, inspectable record
(expectation type, kwargs, observed value) that the report and manifest keep. Why not hand it the
whole table: GX on pandas costs minutes on a million chat rows. So the gate narrows first:

- ``full``       GX runs row-level expectations over a narrow per-row frame (id, counts, flags)
                 derived with Polars; no text goes to pandas.
- ``statistics`` GX validates a one-row table of statistics computed by `stats.compute` (the
                 same numbers the report shows); chosen by ``mode: auto`` above
                 ``full_scan_max_rows``.
- ``sample``     regex checks (leftover PII) run on a bounded random sample of the text.

Every result records which of the three it used.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from instructkit.errors import ConfigError, GateFailed
from instructkit.quality.stats import contamination_expr, main_lang_column

PRESET_DIR = Path(__file__).parent / "presets"
MODES = ("auto", "full", "statistics")
EXPECTATION_KEYS = ("min_rows", "unique_ids", "no_empty_assistant", "label_tokens_positive", "no_contamination",
                    "main_language_share", "token_percentiles", "max_reject_share", "no_pii")

#: Leftover-PII patterns (RE2/Python compatible). Redaction placeholders like <EMAIL> do not match.
PII_PATTERNS = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "api_key": r"(?:sk-[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}|hf_[A-Za-z]{34})",
    "ipv4": r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b",
    "credit_card": r"\b\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}\b",
}


# ----------------------------------------------------------------------------------------- suites
@dataclass
class Suite:
    """A resolved expectation suite: preset + file + inline overrides, validated."""

    name: str
    expect: dict[str, Any]
    mode: str = "auto"
    full_scan_max_rows: int = 250_000
    sample_rows: int = 20_000
    on_missing_column: str = "skip"
    lang_column: str | None = None
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "mode": self.mode,
                "full_scan_max_rows": self.full_scan_max_rows, "sample_rows": self.sample_rows,
                "on_missing_column": self.on_missing_column, "expect": self.expect}


def _read_yaml(path: Path, where: str) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{where}: suite file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a gate suite is a mapping with an 'expect' key")
    return data


def load_suite(preset: str | None = "sft_default", suite: str | Path | None = None,
               expect: dict[str, Any] | None = None, where: str = "quality_gate", **settings: Any) -> Suite:
    """Resolve preset -> suite file -> inline `expect`/settings, later ones overriding keys."""
    merged: dict[str, Any] = {"expect": {}}
    sources = []
    layers: list[tuple[dict[str, Any], str]] = []
    if preset:
        path = PRESET_DIR / f"{preset}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
            raise ConfigError(f"{where}.preset: unknown preset '{preset}' (known: {known})")
        layers.append((_read_yaml(path, where), f"preset:{preset}"))
    if suite:
        layers.append((_read_yaml(Path(suite), f"{where}.suite"), str(suite)))
    inline = {k: v for k, v in settings.items() if v is not None}
    if expect:
        inline["expect"] = expect
    if inline:
        layers.append((inline, "inline"))
    for data, src in layers:
        unknown = sorted(set(data) - {"name", "expect", "mode", "full_scan_max_rows", "sample_rows",
                                      "on_missing_column", "lang_column"})
        if unknown:
            raise ConfigError(f"{src}: unknown suite key '{unknown[0]}'")
        exp = data.get("expect") or {}
        if not isinstance(exp, dict):
            raise ConfigError(f"{src}: 'expect' must be a mapping of expectation -> setting")
        bad = sorted(set(exp) - set(EXPECTATION_KEYS))
        if bad:
            raise ConfigError(f"{src}: unknown expectation '{bad[0]}' (known: {', '.join(EXPECTATION_KEYS)})")
        merged["expect"].update(exp)
        merged.update({k: v for k, v in data.items() if k != "expect"})
        sources.append(src)
    s = Suite(name=str(merged.get("name") or (preset or "custom")), expect=merged["expect"],
              mode=merged.get("mode", "auto"), full_scan_max_rows=int(merged.get("full_scan_max_rows", 250_000)),
              sample_rows=int(merged.get("sample_rows", 20_000)),
              on_missing_column=merged.get("on_missing_column", "skip"), lang_column=merged.get("lang_column"),
              source=" + ".join(sources))
    if s.mode not in MODES:
        raise ConfigError(f"{where}.mode: expected one of {', '.join(MODES)}, got {s.mode!r}")
    if s.on_missing_column not in ("skip", "fail"):
        raise ConfigError(f"{where}.on_missing_column: expected skip or fail, got {s.on_missing_column!r}")
    _check_expect(s.expect, where)
    return s


def _check_expect(exp: dict[str, Any], where: str) -> None:
    def num(key: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}.expect.{key}: expected a number, got {v!r}")

    for key, v in exp.items():
        if v is False or v is None:
            continue
        if key == "min_rows":
            num(key, v)
        elif key == "main_language_share":
            if not isinstance(v, dict) or "min" not in v:
                raise ConfigError(f"{where}.expect.main_language_share: expected {{min: 0.9, language: en}}, got {v!r}")
            num(f"{key}.min", v["min"])
        elif key == "token_percentiles":
            if not isinstance(v, dict):
                raise ConfigError(f"{where}.expect.token_percentiles: expected {{p50: [lo, hi], p99: [lo, hi]}}")
            for p, rng in v.items():
                if not (str(p).startswith("p") and str(p)[1:].isdigit()) or not isinstance(rng, list) or len(rng) != 2:
                    raise ConfigError(f"{where}.expect.token_percentiles.{p}: expected pNN: [lo, hi], got {rng!r}")
        elif key == "max_reject_share":
            if not isinstance(v, dict):
                raise ConfigError(f"{where}.expect.max_reject_share: expected {{default: 0.5, reasons: {{reason: share}}}}")
            if "default" in v and v["default"] is not None:
                num(f"{key}.default", v["default"])
            for r, share in (v.get("reasons") or {}).items():
                num(f"{key}.reasons.{r}", share)
        elif key == "no_pii":
            pats = v.get("patterns", list(PII_PATTERNS)) if isinstance(v, dict) else list(PII_PATTERNS)
            unknown = [p for p in pats if p not in PII_PATTERNS]
            if unknown:
                raise ConfigError(f"{where}.expect.no_pii.patterns: unknown pattern '{unknown[0]}' "
                                  f"(known: {', '.join(PII_PATTERNS)})")
        elif v is not True:
            raise ConfigError(f"{where}.expect.{key}: expected true/false, got {v!r}")


# ------------------------------------------------------------------------------------- GX plumbing
@dataclass
class _Check:
    """One expectation: our name for it, where it runs and what a human should read."""

    key: str
    frame: str  # rows | stats | rejects | sample
    gx: Any  # a great_expectations Expectation
    expected: str
    mode: str
    observe: Any = None  # callable(gx_result_dict) -> observed text/value


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx

    return gx


def _context():
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except Exception:  # progress bars are cosmetic; never fail the gate over them
        pass
    return ctx


def _validate(frames: dict[str, Any], checks: list[_Check], suite_name: str) -> dict[str, dict[str, Any]]:
    """Run each frame's expectations as one GX suite on a pandas dataframe asset."""
    import tqdm

    gx = _gx()
    ctx = _context()
    ds = ctx.data_sources.add_pandas("instructkit")
    out: dict[str, dict[str, Any]] = {}
    for frame_name, df in frames.items():
        mine = [c for c in checks if c.frame == frame_name]
        if not mine:
            continue
        asset = ds.add_dataframe_asset(frame_name)
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
        suite = gx.ExpectationSuite(name=f"{suite_name}:{frame_name}")
        for c in mine:
            suite.add_expectation(c.gx)
        # GX forces tqdm progress bars in Batch.validate; silence them for this call only.
        orig = tqdm.tqdm.__init__

        def quiet(self, *a, __orig=orig, **kw):
            kw["disable"] = True
            __orig(self, *a, **kw)

        tqdm.tqdm.__init__ = quiet
        try:
            res = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
        finally:
            tqdm.tqdm.__init__ = orig
        for r in res.results:
            meta = r.expectation_config.meta or {}
            out[meta["check_id"]] = {"success": bool(r.success), "result": r.result,
                                     "type": r.expectation_config.type,
                                     "exception": (r.exception_info or {}).get("exception_message")
                                     if r.exception_info and r.exception_info.get("raised_exception") else None}
    return out


def _map_observed(res: dict[str, Any], what: str) -> str:
    n = res.get("unexpected_count", 0) or 0
    ex = res.get("partial_unexpected_list") or []
    tail = f" (e.g. {', '.join(map(str, ex[:3]))})" if ex and n else ""
    return f"{n} {what}{tail}"


# ---------------------------------------------------------------------------------------- frames
def _row_frame(files: list[Path], cols: list[str], schema: pl.Schema, main_lang: tuple[str, str] | None):
    """Narrow per-row frame for full mode: only numbers/ids, never the text, goes to pandas."""
    lf = pl.scan_parquet(files)
    exprs = []
    if "id" in cols:
        exprs.append(pl.col("id"))
    if "messages" in cols:
        role = pl.element().struct.field("role")
        content = pl.element().struct.field("content")
        empty = pl.col("messages").list.eval(((role == "assistant") & (content.str.strip_chars().str.len_chars().fill_null(0) == 0)).cast(pl.Int32)).list.sum()
        n_asst = pl.col("messages").list.eval((role == "assistant").cast(pl.Int32)).list.sum()
        exprs.append((empty.fill_null(0) + (n_asst.fill_null(0) == 0).cast(pl.Int32)).alias("bad_assistant_turns"))
    for c in ("n_tokens", "n_label_tokens"):
        if c in cols:
            exprs.append(pl.col(c).fill_null(0))
    if main_lang:
        col, lang = main_lang
        exprs.append((pl.col(col) == lang).fill_null(False).cast(pl.Int8).alias("is_main_language"))
    contam = contamination_expr(cols, schema)
    if contam is not None:
        exprs.append(contam.cast(pl.Int8).alias("contaminated"))
    return lf.select(exprs).collect().to_pandas()


def _text_sample(files: list[Path], n: int, seed: int = 0):
    """All user+assistant text of up to `n` rows, sampled uniformly (the whole set when smaller)."""
    lf = pl.scan_parquet(files)
    total = lf.select(pl.len()).collect().item()
    text = pl.col("messages").list.eval(pl.element().struct.field("content")).list.join("\n").alias("text")
    if total <= n:
        df = lf.select(pl.col("id"), text).collect()
        return df.to_pandas(), "full"
    df = lf.select(pl.col("id"), pl.col("messages")).collect().sample(n=n, seed=seed).select("id", text)
    return df.to_pandas(), "sample"


# ------------------------------------------------------------------------------------------ gate
def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def run_gate(suite: Suite, stats: dict[str, Any], files: list[Path]) -> dict[str, Any]:
    """Validate; return the manifest's `gate` record (never raises on failure: see `check`)."""
    import pandas as pd

    gx = _gx()
    E = gx.expectations
    rows = int(stats.get("rows", 0))
    cols = list(stats.get("columns", []))
    schema = pl.scan_parquet(files).collect_schema() if files else pl.Schema()
    mode = suite.mode if suite.mode != "auto" else ("full" if rows <= suite.full_scan_max_rows else "statistics")
    exp = suite.expect
    checks: list[_Check] = []
    skipped: list[dict[str, Any]] = []
    stat_row: dict[str, Any] = {}

    def add(key: str, frame: str, expectation, expected: str, m: str, observe=None) -> None:
        cid = f"{key}#{len(checks)}"
        expectation.meta = {"check_id": cid, "instructkit": key}
        checks.append(_Check(key, frame, expectation, expected, m, observe))

    def missing(key: str, what: str) -> None:
        skipped.append({"expectation": key, "success": suite.on_missing_column != "fail", "status": "skipped"
                        if suite.on_missing_column != "fail" else "missing", "mode": mode,
                        "observed": f"no {what} column", "expected": f"a {what} column"})

    full = mode == "full"
    lang_col = main_lang_column(cols, schema, suite.lang_column) if files else None
    lang_cfg = exp.get("main_language_share") or None
    main_lang = None
    if lang_cfg and lang_col:
        lang = lang_cfg.get("language") or (stats.get("main_language") or {}).get("language")
        if lang:
            main_lang = (lang_col, lang)

    # min rows: the row count is a statistic in every mode (exact, from Parquet metadata)
    if exp.get("min_rows") not in (None, False):
        stat_row["row_count"] = rows
        add("min_rows", "stats", E.ExpectColumnValuesToBeBetween(column="row_count", min_value=exp["min_rows"]),
            f">= {exp['min_rows']} rows", "statistics", lambda r: f"{rows} rows")

    if exp.get("unique_ids"):
        if "id" not in cols:
            missing("unique_ids", "id")
        elif full:
            add("unique_ids", "rows", E.ExpectColumnValuesToBeUnique(column="id"), "0 duplicate ids", "full",
                lambda r: _map_observed(r, "rows share an id"))
        else:
            stat_row["duplicate_ids"] = stats.get("duplicate_ids", 0)
            add("unique_ids", "stats", E.ExpectColumnValuesToBeBetween(column="duplicate_ids", max_value=0),
                "0 duplicate ids", "statistics", lambda r: f"{stat_row['duplicate_ids']} duplicate ids")

    if exp.get("no_empty_assistant"):
        if "messages" not in cols:
            missing("no_empty_assistant", "messages")
        elif full:
            add("no_empty_assistant", "rows", E.ExpectColumnValuesToBeBetween(column="bad_assistant_turns", max_value=0),
                "0 rows with an empty or missing assistant turn", "full",
                lambda r: f"{r.get('unexpected_count', 0)} rows with an empty or missing assistant turn")
        else:
            n = int(stats.get("rows_with_empty_assistant", 0)) + int(stats.get("rows_without_assistant", 0))
            stat_row["bad_assistant_rows"] = n
            add("no_empty_assistant", "stats", E.ExpectColumnValuesToBeBetween(column="bad_assistant_rows", max_value=0),
                "0 rows with an empty or missing assistant turn", "statistics",
                lambda r: f"{stat_row['bad_assistant_rows']} rows with an empty or missing assistant turn")

    if exp.get("label_tokens_positive"):
        if "n_label_tokens" not in cols:
            missing("label_tokens_positive", "n_label_tokens")
        elif full:
            add("label_tokens_positive", "rows", E.ExpectColumnValuesToBeBetween(column="n_label_tokens", min_value=1),
                "n_label_tokens >= 1 in every row", "full", lambda r: _map_observed(r, "rows with n_label_tokens <= 0"))
        else:
            stat_row["zero_label_token_rows"] = stats.get("zero_label_token_rows", 0)
            add("label_tokens_positive", "stats",
                E.ExpectColumnValuesToBeBetween(column="zero_label_token_rows", max_value=0),
                "n_label_tokens >= 1 in every row", "statistics",
                lambda r: f"{stat_row['zero_label_token_rows']} rows with n_label_tokens <= 0")

    if exp.get("no_contamination"):
        if contamination_expr(cols, schema) is None:
            missing("no_contamination", "contam_*")
        elif full:
            add("no_contamination", "rows", E.ExpectColumnValuesToBeBetween(column="contaminated", max_value=0),
                "0 rows matching a benchmark", "full",
                lambda r: f"{r.get('unexpected_count', 0)} rows matching a benchmark")
        else:
            stat_row["contaminated_rows"] = stats.get("contaminated_rows", 0)
            add("no_contamination", "stats", E.ExpectColumnValuesToBeBetween(column="contaminated_rows", max_value=0),
                "0 rows matching a benchmark", "statistics",
                lambda r: f"{stat_row['contaminated_rows']} rows matching a benchmark")

    if lang_cfg:
        lo = float(lang_cfg["min"])
        if not lang_col:
            missing("main_language_share", "lang/lang_*")
        elif main_lang is None:
            missing("main_language_share", f"non-empty {lang_col}")
        elif full:
            add("main_language_share", "rows", E.ExpectColumnMeanToBeBetween(column="is_main_language", min_value=lo),
                f"share of '{main_lang[1]}' in {lang_col} >= {lo}", "full",
                lambda r: f"{float(r.get('observed_value') or 0):.4f}")
        else:
            share = float((stats.get("languages", {}).get(lang_col) or {}).get(main_lang[1], 0.0))
            stat_row["main_language_share"] = share
            add("main_language_share", "stats", E.ExpectColumnValuesToBeBetween(column="main_language_share", min_value=lo),
                f"share of '{main_lang[1]}' in {lang_col} >= {lo}", "statistics", lambda r: f"{share:.4f}")

    tp = exp.get("token_percentiles")
    if tp:
        if "n_tokens" not in cols:
            missing("token_percentiles", "n_tokens")
        else:
            qs = sorted(tp.items(), key=lambda kv: int(kv[0][1:]))
            expected = ", ".join(f"{p} in [{a}, {b}]" for p, (a, b) in qs)
            if full:
                add("token_percentiles", "rows", E.ExpectColumnQuantileValuesToBeBetween(
                    column="n_tokens", quantile_ranges={"quantiles": [int(p[1:]) / 100 for p, _ in qs],
                                                        "value_ranges": [list(r) for _, r in qs]}),
                    expected, "full", lambda r: ", ".join(
                        f"p{round(q * 100)}={v}" for q, v in zip((r.get("observed_value") or {}).get("quantiles", []),
                                                                 (r.get("observed_value") or {}).get("values", []))))
            else:
                import numpy as np  # percentiles not precomputed by stats are taken from the exact column

                nt = pl.scan_parquet(files).select("n_tokens").collect().to_series().to_numpy()
                vals = {p: float(np.quantile(nt, int(p[1:]) / 100)) if nt.size else 0.0 for p, _ in qs}
                for p, (a, b) in qs:
                    stat_row[f"n_tokens_{p}"] = vals[p]
                    add("token_percentiles", "stats", E.ExpectColumnValuesToBeBetween(
                        column=f"n_tokens_{p}", min_value=a, max_value=b), f"{p} in [{a}, {b}]", "statistics",
                        lambda r, p=p: f"{p}={vals[p]:g}")

    mr = exp.get("max_reject_share")
    reject_row: dict[str, float] = {}
    if mr:
        shares = dict(stats.get("reject_shares") or {})
        limits = dict(mr.get("reasons") or {})
        default = mr.get("default")
        for reason in sorted(set(shares) | set(limits)):
            limit = limits.get(reason, default)
            if limit is None:
                continue
            col = f"share_{_safe(reason)}"
            reject_row[col] = float(shares.get(reason, 0.0))
            add("max_reject_share", "rejects", E.ExpectColumnValuesToBeBetween(column=col, max_value=float(limit)),
                f"{reason} <= {limit:.2%} of rows read", "statistics",
                lambda r, reason=reason, col=col: f"{reason} = {reject_row[col]:.2%}")

    pii = exp.get("no_pii")
    sample_df = None
    if pii:
        names = pii.get("patterns", list(PII_PATTERNS)) if isinstance(pii, dict) else list(PII_PATTERNS)
        if "messages" not in cols:
            missing("no_pii", "messages")
        else:
            sample_df, smode = _text_sample(files, suite.sample_rows)
            pats = [PII_PATTERNS[n] for n in names]
            add("no_pii", "sample", E.ExpectColumnValuesToNotMatchRegexList(column="text", regex_list=pats),
                f"no {'/'.join(names)} in {len(sample_df)} {'sampled ' if smode == 'sample' else ''}rows", smode,
                lambda r: f"{r.get('unexpected_count', 0)} rows with {'/'.join(names)}")

    frames: dict[str, Any] = {}
    if any(c.frame == "rows" for c in checks):
        frames["rows"] = _row_frame(files, cols, schema, main_lang)
    if stat_row:
        frames["stats"] = pd.DataFrame([stat_row])
    if reject_row:
        frames["rejects"] = pd.DataFrame([reject_row])
    if sample_df is not None:
        frames["sample"] = sample_df
    gx_out = _validate(frames, checks, suite.name) if checks else {}

    results: list[dict[str, Any]] = []
    for c in checks:
        cid = c.gx.meta["check_id"]
        r = gx_out.get(cid, {"success": False, "result": {}, "type": "?", "exception": "not run"})
        observed = r["exception"] and f"error: {r['exception']}" or (c.observe(dict(r["result"] or {})) if c.observe else "")
        results.append({"expectation": c.key, "gx_type": r["type"], "success": r["success"] and not r["exception"],
                        "mode": c.mode, "observed": observed, "expected": c.expected})
    results.extend(skipped)
    passed = all(r["success"] for r in results)
    modes = {r["mode"] for r in results if r.get("status") != "skipped"}
    return {"passed": passed, "suite": suite.as_dict(), "mode": mode, "modes_used": sorted(modes),
            "rows": rows, "results": results}


def failure_message(gate: dict[str, Any]) -> str:
    """One line: each failed expectation with observed vs expected."""
    failed = [r for r in gate["results"] if not r["success"]]
    parts = [f"{r['expectation']}: observed {r['observed']}, expected {r['expected']} [{r['mode']}]" for r in failed]
    return f"quality gate '{gate['suite']['name']}' failed {len(failed)} of {len(gate['results'])} " \
           f"expectations: " + "; ".join(parts)


def check(suite: Suite, stats: dict[str, Any], files: list[Path]) -> dict[str, Any]:
    """Run the gate; raise `GateFailed` (carrying the manifest record) when it does not pass."""
    gate = run_gate(suite, stats, files)
    if not gate["passed"]:
        exc = GateFailed(failure_message(gate))
        exc.result = {"gate": gate}  # the engine stores this in the manifest before quarantining
        raise exc
    return gate


def publish_or_quarantine(out_dir: Path | str, passed: bool) -> list[str]:
    """Leave a passed dataset where it is; move a failed one's train-ready dirs to OUT/quarantine/.

    Returns the moved paths (relative to out_dir) so the manifest can point at them. Reports,
    rejects and the manifest stay in place: they explain why the data was held back.
    """
    out_dir = Path(out_dir)
    if passed:
        return []
    quarantine = out_dir / "quarantine"
    quarantine.mkdir(parents=True, exist_ok=True)
    moved = []
    for name in ("data", "packed"):
        src = out_dir / name
        if src.exists():
            dst = quarantine / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.move(str(src), str(dst))
            moved.append(f"quarantine/{name}")
    return moved


def gate_passed(manifest: dict[str, Any]) -> bool:
    """What the trainer asks: did this dataset pass a gate? (absent gate == not passed)"""
    return bool((manifest.get("gate") or {}).get("passed"))

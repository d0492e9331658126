"""Benchmark the quality filters against plain langdetect and against hand labels.

    python benchmarks/bench_filters.py [--quick] [--section langid,defects,zh,recipe]

1. Language ID: throughput of `instructkit.ops.filters._langid.detect` vs `langdetect.detect` (one
   text per call, seeded) on the same texts, 1 process and 2 processes each; accuracy of both on
   BIG-bench language identification (rows whose gold language langdetect supports) and on the
   OASST2 per-message `lang` labels.
2. Alpaca 52k defects: rows flagged per class, precision on the hand-labelled sample
   (tests/fixtures/filters/alpaca_defect_labels.csv: ids + labels only).
3. Alpaca-zh: how language/defect/heuristic annotations relate to the translation `score`.
4. The whole pipelines/clean_alpaca.yaml step list over Alpaca 52k: rows/s and rejects by reason.

Reads /work/shared/data (../shared/data from the repo); skips a section with a message when missing.
"""
from __future__ import annotations

import argparse
import csv
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("INSTRUCTKIT_DATA", REPO.parent / "shared" / "data"))

# BIG-bench language names -> langdetect codes (only languages langdetect has a profile for).
BIGBENCH_NAMES = {
    "Afrikaans": "af", "Arabic": "ar", "Standard Arabic": "ar", "Bulgarian": "bg", "Bengali": "bn", "Catalan": "ca",
    "Czech": "cs", "Welsh": "cy", "Danish": "da", "German": "de", "Greek": "el", "Modern Greek": "el", "English": "en",
    "Spanish": "es", "Estonian": "et", "Persian": "fa", "Farsi": "fa", "Western Farsi": "fa", "Finnish": "fi",
    "French": "fr", "Gujarati": "gu", "Hebrew": "he", "Hindi": "hi", "Croatian": "hr", "Hungarian": "hu",
    "Indonesian": "id", "Italian": "it", "Japanese": "ja", "Kannada": "kn", "Korean": "ko", "Lithuanian": "lt",
    "Latvian": "lv", "Standard Latvian": "lv", "Macedonian": "mk", "Malayalam": "ml", "Marathi": "mr",
    "Nepali": "ne", "Dutch": "nl", "Norwegian": "no", "Norwegian Bokmal": "no", "Eastern Panjabi": "pa",
    "Punjabi": "pa", "Polish": "pl", "Portuguese": "pt", "Romanian": "ro", "Russian": "ru", "Slovak": "sk",
    "Slovenian": "sl", "Somali": "so", "Albanian": "sq", "Swedish": "sv", "Swahili": "sw", "Tamil": "ta",
    "Telugu": "te", "Thai": "th", "Tagalog": "tl", "Filipino": "tl", "Turkish": "tr", "Ukrainian": "uk",
    "Urdu": "ur", "Vietnamese": "vi", "Mandarin Chinese": "zh", "Chinese": "zh",
}


def base(code: str) -> str:
    return str(code).split("-")[0].lower()


# ---------------------------------------------------------------- data loading
def alpaca_rows(pattern: str) -> pl.DataFrame:
    rows = [json.loads(line) for p in sorted(glob.glob(str(DATA / "alpaca" / pattern))) for line in gzip.open(p, "rt")]
    return pl.DataFrame(rows)


def canonical(df: pl.DataFrame, source: str) -> pa.Table:
    """Alpaca rows -> canonical table (user = instruction + blank line + input; assistant = output)."""
    user = pl.when(pl.col("input").str.strip_chars() == "").then(pl.col("instruction")).otherwise(
        pl.col("instruction") + "\n\n" + pl.col("input"))
    msgs = pl.concat_list([pl.struct(role=pl.lit("user"), content=user),
                           pl.struct(role=pl.lit("assistant"), content=pl.col("output"))])
    return df.select(id=pl.col("id").cast(pl.Utf8), messages=msgs, source=pl.lit(source), meta=pl.lit("{}")).to_arrow()


def bigbench() -> tuple[list[str], list[str]]:
    texts, gold = [], []
    for line in gzip.open(DATA / "mc_eval" / "bigbench_language_identification.jsonl.gz", "rt"):
        row = json.loads(line)
        found = re.search(r"Sentence:(.*?)\n[A-D]\. ", row["query"], re.S)
        sent = found.group(1).strip() if found else ""
        if not sent:  # a few rows have an empty sentence: nothing to identify
            continue
        options = re.findall(r"\n([A-D])\. (.+)", row["query"])
        name = options[row["gold"]][1].strip()
        if name in BIGBENCH_NAMES:
            texts.append(sent)
            gold.append(BIGBENCH_NAMES[name])
    return texts, gold


def oasst() -> tuple[list[str], list[str]]:
    texts, gold = [], []

    def walk(node):
        texts.append(node["text"])
        gold.append(base(node["lang"]))
        for child in node.get("replies", []):
            walk(child)

    for line in open(DATA / "oasst" / "oasst2_filtered_trees.jsonl"):
        walk(json.loads(line)["prompt"])
    return texts, gold


# ---------------------------------------------------------------- language ID
def _plain_langdetect(texts: list[str]) -> list[str]:
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    out = []
    for t in texts:
        try:
            out.append(detect(t))
        except LangDetectException:
            out.append("unknown")
    return out


def _fast(texts: list[str]) -> list[str]:
    from instructkit.ops.filters import _langid

    return list(_langid.detect(pa.array(texts))[0])


def _warm(_: int) -> int:
    from instructkit.ops.filters import _langid

    _langid.detect(pa.array(["warm up the kernels once"]))  # first call pays ~1 s of one-off setup
    from langdetect import detect

    detect("warm up the profiles")
    return 0


def timed(fn, texts, procs: int, pool: ProcessPoolExecutor | None, chunk: int) -> tuple[list[str], float]:
    start = time.perf_counter()
    if procs == 1:
        out = fn(texts)
    else:
        parts = [texts[i:i + chunk] for i in range(0, len(texts), chunk)]
        out = [x for part in pool.map(fn, parts) for x in part]
    return out, time.perf_counter() - start


def bench_langid(quick: bool) -> dict:
    if not (DATA / "oasst").exists():
        print("langid: ../shared/data missing, skipped")
        return {}
    bb_t, bb_g = bigbench()
    oa_t, oa_g = oasst()
    res: dict = {"bigbench_rows": len(bb_t), "oasst_rows": len(oa_t)}
    _warm(0)
    # accuracy (single process, all rows unless --quick)
    n_bb = 1500 if quick else len(bb_t)
    for name, texts, gold in (("bigbench", bb_t[:n_bb], bb_g[:n_bb]), ("oasst", oa_t, oa_g)):
        ours, t_ours = timed(_fast, texts, 1, None, 0)
        ref, t_ref = timed(_plain_langdetect, texts, 1, None, 0)
        acc_ours = float(np.mean([base(a) == g for a, g in zip(ours, gold)]))
        acc_ref = float(np.mean([base(a) == g for a, g in zip(ref, gold)]))
        agree = float(np.mean([base(a) == base(b) for a, b in zip(ours, ref)]))
        res[name] = {"n": len(texts), "acc_fast": acc_ours, "acc_langdetect": acc_ref, "agreement": agree,
                     "texts_per_s_fast_1proc": len(texts) / t_ours, "texts_per_s_langdetect_1proc": len(texts) / t_ref}
        print(f"{name:9s} n={len(texts):5d} accuracy fast={acc_ours:.4f} langdetect={acc_ref:.4f} "
              f"agreement={agree:.4f} | 1 proc: fast {len(texts) / t_ours:8.0f}/s langdetect "
              f"{len(texts) / t_ref:6.0f}/s ratio {t_ref / t_ours:5.1f}x")
    # throughput on 2 processes, both tools, same mixed texts
    mixed = (bb_t[:n_bb] + oa_t) * (1 if quick else 2)
    # spawn, not fork: a forked Polars/Arrow thread pool can deadlock in the child
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        list(pool.map(_warm, range(4)))
        _, t_fast2 = timed(_fast, mixed, 2, pool, 2048)
        sub = mixed[: (1000 if quick else 4000)]
        _, t_ref2 = timed(_plain_langdetect, sub, 2, pool, 250)
    fast2 = len(mixed) / t_fast2
    ref2 = len(sub) / t_ref2
    res["two_procs"] = {"texts": len(mixed), "fast_texts_per_s": fast2, "langdetect_texts_per_s": ref2,
                        "ratio": fast2 / ref2}
    print(f"2 procs   fast {fast2:8.0f} texts/s  langdetect {ref2:6.0f} texts/s  ratio {fast2 / ref2:5.1f}x")
    return res


# ---------------------------------------------------------------- Alpaca defects
def bench_defects(quick: bool) -> dict:
    if not (DATA / "alpaca").exists():
        print("defects: ../shared/data/alpaca missing, skipped")
        return {}
    from instructkit.ops.filters._text import role_views
    from instructkit.ops.filters.defects import DEFECTS, defect_masks

    df = alpaca_rows("alpaca_en_original.part-*.jsonl.gz")
    table = canonical(df, "alpaca")
    start = time.perf_counter()
    masks = defect_masks(role_views(table))
    dt = time.perf_counter() - start
    ids = df["id"].cast(pl.Utf8).to_numpy()
    labels: dict[str, dict[str, int]] = {}
    with open(REPO / "tests" / "fixtures" / "filters" / "alpaca_defect_labels.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            labels.setdefault(r["defect"], {})[r["id"]] = int(r["label"])
    out = {"rows": len(df), "seconds": dt, "classes": {}}
    print(f"\nAlpaca 52k defects ({len(df)} rows, {len(df) / dt:.0f} rows/s)")
    print(f"{'defect':22s} {'flagged':>7s} {'labelled':>8s} {'correct':>7s} {'precision':>9s} {'still_flagged':>13s}")
    for d in DEFECTS:
        flagged = set(ids[masks[d].to_numpy()])
        lab = labels.get(d, {})
        correct = sum(lab.values())
        still = sum(1 for i in lab if i in flagged)
        prec = correct / len(lab) if lab else float("nan")
        out["classes"][d] = {"flagged": len(flagged), "labelled": len(lab), "correct": correct,
                             "precision": prec, "labelled_still_flagged": still}
        print(f"{d:22s} {len(flagged):7d} {len(lab):8d} {correct:7d} {prec:9.3f} {still:13d}")
    any_flag = np.zeros(len(df), dtype=bool)
    for d in DEFECTS:
        any_flag |= masks[d].to_numpy()
    out["rows_with_any_defect"] = int(any_flag.sum())
    print(f"rows with any defect: {int(any_flag.sum())}")
    return out


# ---------------------------------------------------------------- Alpaca-zh vs score
def bench_zh(quick: bool) -> dict:
    if not (DATA / "alpaca").exists():
        print("zh: ../shared/data/alpaca missing, skipped")
        return {}
    from instructkit.ops import build

    df = alpaca_rows("alpaca_zh_v3.part-*.jsonl.gz")
    if quick:
        df = df.head(8000)
    table = canonical(df, "alpaca_zh")
    cols = {}
    for spec in ({"language": {"drop_mismatch": True}}, "instruction_defects", "quality_heuristics"):
        op, _ = build(spec)
        op.setup()
        parts = [op.process(table.slice(i, 8192)).table for i in range(0, table.num_rows, 8192)]
        t = pa.concat_tables(parts)
        for c in op.writes:
            cols[c] = t.column(c)
    ann = pl.from_arrow(pa.table(cols)).with_columns(score=df["score"])
    ann = ann.with_columns(
        user_zh=pl.col("lang_user").str.starts_with("zh"),
        asst_zh=pl.col("lang_assistant").str.starts_with("zh"),
        asst_lang=pl.when(pl.col("lang_assistant").str.starts_with("zh")).then(pl.lit("zh"))
        .when(pl.col("lang_assistant") == "unknown").then(pl.lit("unknown"))
        .when(pl.col("lang_assistant").is_in(["ja", "ko"])).then(pl.lit("ja/ko (kanji-heavy zh)"))
        .when(pl.col("lang_assistant") == "en").then(pl.lit("en")).otherwise(pl.lit("other")),
        any_defect=pl.col("defect_flags").list.len() > 0,
        repetitive=pl.col("rep_dup_ngram_frac") > 0.3,
    )
    scored = ann.filter(pl.col("score").is_not_null())
    overall = scored["score"].mean()
    print(f"\nAlpaca-zh ({ann.height} rows, mean score {overall:.3f}, share of score<=2: "
          f"{(scored['score'] <= 2).mean():.3f})")
    out: dict = {"rows": ann.height, "mean_score": overall, "groups": {}}

    def report(name: str, expr: pl.Expr) -> None:
        g = scored.group_by(expr.alias("g")).agg(pl.len().alias("n"), pl.col("score").mean().alias("mean"),
                                                (pl.col("score") <= 2).mean().alias("low")).sort("g")
        out["groups"][name] = g.to_dicts()
        for r in g.iter_rows(named=True):
            print(f"  {name:28s} {str(r['g']):26s} n={r['n']:6d} mean score={r['mean']:.3f} score<=2: {r['low']:.3f}")

    report("assistant language", pl.col("asst_lang"))
    report("user language is zh", pl.col("user_zh"))
    report("lang_mismatch", pl.col("lang_mismatch"))
    report("any defect flag", pl.col("any_defect"))
    report("dup 5-gram frac > 0.3", pl.col("repetitive"))
    flags = scored.explode("defect_flags").filter(pl.col("defect_flags").is_not_null())
    g = flags.group_by("defect_flags").agg(pl.len().alias("n"), pl.col("score").mean().alias("mean")).sort("n", descending=True)
    out["by_defect"] = g.to_dicts()
    for r in g.iter_rows(named=True):
        print(f"  defect {r['defect_flags']:22s} n={r['n']:5d} mean score={r['mean']:.3f}")
    from scipy.stats import spearmanr

    for c in ("lang_assistant_prob", "lang_user_prob", "rep_dup_ngram_frac", "hq_symbol_ratio", "hq_alpha_ratio"):
        rho = spearmanr(scored[c].to_numpy(), scored["score"].to_numpy()).statistic
        out.setdefault("spearman", {})[c] = float(rho)
        print(f"  spearman(score, {c}) = {rho:+.3f}")
    return out


# ---------------------------------------------------------------- the recipe
def bench_recipe(quick: bool) -> dict:
    if not (DATA / "alpaca").exists():
        print("recipe: ../shared/data/alpaca missing, skipped")
        return {}
    import yaml

    from instructkit.pipeline import Pipeline

    df = alpaca_rows("alpaca_en_original.part-*.jsonl.gz")
    if quick:
        df = df.head(10000)
    table = canonical(df, "alpaca")
    steps = yaml.safe_load((REPO / "pipelines" / "clean_alpaca.yaml").read_text())["steps"]
    out = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            res = Pipeline(steps, inputs=[table], output=Path(tmp) / "out", workers=workers).run(progress=False)
            dt = time.perf_counter() - start
            rej = res.rejects()
            reasons = Counter(zip(rej.column("stage").to_pylist(), rej.column("reason").to_pylist()))
            m = res.manifest["counts"]
        out[f"workers_{workers}"] = {"rows": table.num_rows, "seconds": dt, "rows_per_s": table.num_rows / dt,
                                     "written": m["written"], "rejected": m["rejected"]}
        print(f"\nclean_alpaca workers={workers}: {table.num_rows} rows in {dt:.1f}s = {table.num_rows / dt:.0f} rows/s; "
              f"written {m['written']}, rejected {m['rejected']}")
    out["rejects"] = [{"stage": s, "reason": r, "rows": n} for (s, r), n in reasons.most_common()]
    for (s, r), n in reasons.most_common():
        print(f"  {s:26s} {r:28s} {n:6d}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--section", default="langid,defects,zh,recipe")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)
    results = {}
    for name in args.section.split(","):
        results[name] = {"langid": bench_langid, "defects": bench_defects, "zh": bench_zh,
                         "recipe": bench_recipe}[name](args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

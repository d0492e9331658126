"""Template + tokenize + loss mask on the 52k Alpaca rows: instructkit vs datasets.map (and TRL).

    python benchmarks/bench_tokenize.py [--quick] [--tokenizer gpt2|stories] [--workers 2]

Same rows, same tokenizer (GPT-2 with a ChatML chat template and <|im_start|>/<|im_end|> as
special tokens, built from tests/fixtures), same template. Baselines, in the same run:
- `datasets.Dataset.map(apply_chat_template + tokenizer, batched=True, num_proc=2)`: the common
  recipe; it computes input_ids only (no loss mask);
- TRL `SFTTrainer` dataset preparation with `assistant_only_loss=True` (input_ids + assistant
  masks), when trl is importable.
input_ids must be identical row for row; the script exits non-zero when they are not.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path("/work/shared/data/alpaca")


def load_alpaca(limit: int | None):
    import pyarrow as pa

    from instructkit.schema import record_schema

    files = sorted(DATA.glob("alpaca_en_original.part-*-of-03.jsonl.gz"))
    rows = []
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                user = r["instruction"] + (("\n\n" + r["input"]) if r.get("input") else "")
                rows.append({"id": str(r["id"]), "source": "alpaca", "meta": "{}",
                             "messages": [{"role": "user", "content": user},
                                          {"role": "assistant", "content": r["output"]}]})
                if limit and len(rows) >= limit:
                    return pa.Table.from_pylist(rows, schema=record_schema())
    return pa.Table.from_pylist(rows, schema=record_schema())


def build_tokenizer(kind: str, layout: str, out: Path) -> Path:
    import importlib.util

    path = REPO / "tests" / "fixtures" / "templates" / "tokenizers.py"
    spec = importlib.util.spec_from_file_location("bench_template_fixtures", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.save(kind, layout, out)


def _baseline_map(batch, tok):  # the usual recipe: render with the chat template, then tokenize
    texts = tok.apply_chat_template(batch["messages"], tokenize=False)
    # the ChatML template writes no BOS: let the tokenizer add its own (as `tokenizer(text)` does)
    return {"input_ids": tok(texts)["input_ids"]}


def run_datasets_map(table, tok_path: Path, num_proc: int, cache: Path):
    import datasets
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_path))  # loaded once, shipped to the workers by datasets
    ds = datasets.Dataset.from_dict({"messages": table.column("messages").to_pylist()})
    t0 = time.perf_counter()
    out = ds.map(_baseline_map, batched=True, batch_size=1000, num_proc=num_proc, fn_kwargs={"tok": tok},
                 remove_columns=["messages"], load_from_cache_file=False,
                 cache_file_name=str(cache / "map.arrow"))
    ids = out["input_ids"]
    return time.perf_counter() - t0, ids


def run_trl(table, tok_path: Path, num_proc: int, out_dir: Path):
    try:
        import trl  # noqa: F401
        from trl import SFTConfig, SFTTrainer
    except Exception as exc:  # pragma: no cover - optional
        return None, None, f"trl not importable ({type(exc).__name__})"
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_path))
    model = AutoModelForCausalLM.from_pretrained(str(REPO / "examples" / "models" / "stories260K"), dtype=torch.float32)
    ds = datasets.Dataset.from_dict({"messages": table.column("messages").to_pylist()})
    cfg = SFTConfig(output_dir=str(out_dir), assistant_only_loss=True, dataset_num_proc=num_proc, max_length=None,
                    report_to=[], packing=False, use_cpu=True)
    t0 = time.perf_counter()
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    elapsed = time.perf_counter() - t0
    return elapsed, trainer.train_dataset["input_ids"], f"trl {trl.__version__}"


def run_ours(table, tok_path: Path, workers: int):
    from instructkit.ops.tokenize import tokenize_parallel
    from instructkit.templates import load_template, load_tokenizer

    tok = load_tokenizer(tok_path)  # preloaded, like the datasets.map baseline's tokenizer
    tpl = load_template(tokenizer=tok)  # the tokenizer's ChatML chat_template (recognised: vectorized engine)
    t0 = time.perf_counter()  # includes starting the worker processes
    out, reasons = tokenize_parallel(table, tok, tpl, workers=workers, batch_size=4096)
    elapsed = time.perf_counter() - t0
    return elapsed, out, reasons


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5,000 rows")
    ap.add_argument("--tokenizer", choices=("gpt2", "stories"), default="gpt2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-trl", action="store_true")
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"skip: {DATA} not found (the benchmark reads the shared Alpaca data)")
        return 0
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    table = load_alpaca(5000 if args.quick else None)
    tmp = Path(tempfile.mkdtemp(prefix="bench_tokenize_"))
    try:
        tok_path = build_tokenizer(args.tokenizer, "chatml", tmp)
        gen_path = build_tokenizer(args.tokenizer, "chatml_generation", tmp)
        print(f"rows: {table.num_rows}  tokenizer: {args.tokenizer}+chatml  workers/num_proc: {args.workers}")

        timings = {}
        for workers in sorted({1, args.workers}):
            ours_s, ours, reasons = run_ours(table, tok_path, workers)
            n_rej = len(reasons) - reasons.null_count
            tokens = sum(ours["n_tokens"].to_pylist())
            label = "1 process, Rust threads" if workers == 1 else f"{workers} worker processes"
            print(f"instructkit template+tokenize+mask ({label}): {ours_s:7.2f} s  ({table.num_rows / ours_s:,.0f} "
                  f"rows/s, {tokens / ours_s / 1e6:.2f} M tok/s, {n_rej} rejected)")
            timings[workers] = ours_s
        ours_s = min(timings.values())
        our_ids = ours["input_ids"].to_pylist()

        map_s, map_ids = run_datasets_map(table, tok_path, args.workers, tmp)
        same = map_ids == our_ids
        print(f"datasets.map(apply_chat_template+tokenizer, num_proc={args.workers}): {map_s:7.2f} s  "
              f"-> ratio {map_s / ours_s:.2f}x (vs our best)  identical input_ids: {same}")
        ok = same
        if not args.no_trl:
            trl_s, trl_ids, what = run_trl(table, gen_path, args.workers, tmp / "trl")
            if trl_s is None:
                print(f"TRL baseline skipped: {what}")
            else:
                same_trl = list(map(list, trl_ids)) == our_ids
                print(f"{what} SFTTrainer dataset prep (assistant_only_loss, num_proc={args.workers}): {trl_s:7.2f} s  "
                      f"-> ratio {trl_s / ours_s:.2f}x  identical input_ids: {same_trl}")
                ok = ok and same_trl
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

"""`instructkit eval`: evaluate a model (and adapters) on benchmark tasks; `instructkit eval compare`.

    instructkit eval --model PATH_OR_ID [--adapter DIR ...] [--base] --tasks ifeval,arc_easy --limit N
                     [--data-dir DIR] [--out results.json] [--log-samples]
    instructkit eval compare base.json tuned.json [--markdown table.md]

With several runs (--base plus one or more --adapter) each run is evaluated in turn and the
comparison table is printed at the end, so base vs tuned is one command. Heavy imports happen in
`run` so `instructkit --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from instructkit.errors import ConfigError

DATA_DIR_ENV = "INSTRUCTKIT_EVAL_DATA"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="evaluate a model / LoRA adapter on benchmarks (IFEval, MC, GSM8K, BBH, held-out loss)",
        description="Evaluate a model and optional LoRA adapters. Built-in tasks: "
                    + ", ".join(_builtin_names()) + ". Use 'instructkit eval compare' to tabulate results files.")
    p.add_argument("--model", help="local model directory or Hugging Face Hub id")
    p.add_argument("--adapter", action="append", default=[],
                   help="PEFT LoRA adapter directory (repeat to evaluate several adapters)")
    p.add_argument("--base", action="store_true", help="also evaluate the base model (first column of the table)")
    p.add_argument("--tasks", help="comma-separated task names or task YAML paths")
    p.add_argument("--limit", type=int, help="evaluate at most N items per task (per subtask file)")
    p.add_argument("--data-dir", default=os.environ.get(DATA_DIR_ENV),
                   help=f"folder holding the benchmark files (default: ${DATA_DIR_ENV})")
    p.add_argument("--heldout", help="pipeline output directory whose eval split the 'heldout' task scores")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, help="override the tasks' generation length")
    p.add_argument("--template", help="chat template name for chat tasks (default: the tokenizer's, else plain)")
    p.add_argument("--system", help="system message for chat tasks")
    p.add_argument("--dtype", default="float32", help="float32 (default), bfloat16 or float16")
    p.add_argument("--device", help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--out", help="results JSON path (several runs: a directory, one <label>.json per run)")
    p.add_argument("--markdown", help="also write the comparison table as markdown to this file")
    p.add_argument("--log-samples", action="store_true", help="include per-sample inputs, outputs and scores")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run)
    sub = p.add_subparsers(dest="eval_command", metavar="[compare]", required=False)
    c = sub.add_parser("compare", help="comparison table of several results files (first = reference)")
    c.add_argument("results", nargs="+", help="results JSON files written by 'instructkit eval --out'")
    c.add_argument("--markdown", dest="compare_markdown", help="write the table as markdown to this file")
    c.set_defaults(func=run_compare)
    return p


def _builtin_names() -> list[str]:
    from instructkit.eval.tasks import builtin_tasks

    return list(builtin_tasks())


def _say(args: argparse.Namespace, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


def run_compare(args: argparse.Namespace) -> int:
    from instructkit.eval.compare import load_results, to_markdown, to_terminal

    runs = [load_results(p) for p in args.results]
    print(to_terminal(runs))
    if args.compare_markdown:
        Path(args.compare_markdown).write_text(to_markdown(runs), encoding="utf-8")
    return 0


def run(args: argparse.Namespace) -> int:
    if not args.model:
        raise ConfigError("instructkit eval: --model is required (a local model directory or a Hub id)")
    if not args.tasks:
        raise ConfigError("instructkit eval: --tasks is required, e.g. --tasks ifeval,arc_easy")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be a positive number, got {args.limit}")
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"'eval' needs {exc.name}; install it with: pip install 'instructkit[train]'") from None
    from instructkit.eval.compare import to_markdown, to_terminal
    from instructkit.eval.model import load_model
    from instructkit.eval.runner import evaluate
    from instructkit.eval.tasks import load_task

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in tasks:  # fail on a typo or a missing file before loading a model
        spec = load_task(t)
        if spec.output_type == "heldout_loss" and not args.heldout and not spec.data:
            raise ConfigError(f"task {spec.name!r} needs --heldout PIPELINE_OUT (a pipeline output dir with an eval split)")
        if spec.output_type != "heldout_loss":
            spec.data_files(args.data_dir)
    adapters: list[str | None] = ([None] if args.base or not args.adapter else []) + list(args.adapter)
    labels = _labels(args.model, adapters)
    docs = []
    for adapter, label in zip(adapters, labels):
        _say(args, f"loading {args.model}" + (f" + adapter {adapter}" if adapter else ""))
        lm = load_model(args.model, adapter=adapter, dtype=args.dtype, device=args.device)
        doc = evaluate(lm, tasks, data_dir=args.data_dir, limit=args.limit, batch_size=args.batch_size,
                       template=args.template, system=args.system, log_samples=args.log_samples,
                       max_new_tokens=args.max_new_tokens, heldout=args.heldout, label=label,
                       progress=lambda m: _say(args, m))
        docs.append(doc)
        del lm
    _write(args, docs)
    print(to_terminal(docs))
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(docs), encoding="utf-8")
    return 0


def _labels(model: str, adapters: list[str | None]) -> list[str]:
    labels = []
    for a in adapters:
        label = "base" if a is None else (Path(a).name or "adapter")
        while label in labels:
            label += "_"
        labels.append(label)
    return labels


def _write(args: argparse.Namespace, docs: list[dict[str, Any]]) -> None:
    if not args.out:
        return
    out = Path(args.out)
    if len(docs) == 1 and out.suffix == ".json":
        out.parent.mkdir(parents=True, exist_ok=True)
        targets = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        targets = [out / f"{d['label']}.json" for d in docs]
    for doc, path in zip(docs, targets):
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _say(args, f"wrote {path}")

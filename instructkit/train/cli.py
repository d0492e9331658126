"""`instructkit train CONFIG.yaml [--force]`: the command-line face of `instructkit.train.train`.

Kept free of heavy imports so `instructkit --help` stays fast; torch is imported when the
command runs, with an install hint when it is missing.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from instructkit.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a LoRA adapter on a pipeline's output (YAML recipe)",
                              description="Train a PEFT-compatible LoRA adapter on a pipeline output directory.")
    p.add_argument("config", help="training YAML, e.g. pipelines/train_quickstart.yaml")
    p.add_argument("--force", action="store_true", help="train even if the dataset's quality gate did not pass")
    p.add_argument("--out", help="output directory (overrides output_dir)")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"'train' needs {exc.name}; install it with: pip install 'instructkit[train]'") from None
    from pathlib import Path

    from instructkit.train.config import load_train_config
    from instructkit.train.loop import train

    config = load_train_config(args.config)
    if args.force:
        config.force = True
    if args.out:
        config.output_dir = Path(args.out)
    if args.max_steps is not None:
        if args.max_steps <= 0:
            raise ConfigError("--max-steps must be > 0")
        config.train.max_steps = args.max_steps
    if args.no_resume:
        config.train.resume = False
    result = train(config, show_progress=not args.quiet)
    if not args.quiet:
        last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
        ev = f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""
        speed = f"{result.tokens_per_second:,.0f} tok/s"
        print(f"trained {result.steps} steps, last loss {last}{ev}, {speed}", file=sys.stderr)
        print(f"adapter: {result.adapter_dir}  log: {result.log_path}  plot: {result.plot_path}", file=sys.stderr)
    return 0

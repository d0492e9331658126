"""`instructkit` command line: a thin shell over the Python API.

Every user-fixable problem (bad YAML, bad data, failed gate) ends as one line on stderr and a
non-zero exit code; tracebacks are for bugs, and `--debug` shows them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from instructkit.errors import InstructkitError

#: Subcommands contributed by feature packages: module with `add_parser(subparsers)` and `run(args)`.
_PLUGINS = (
    "instructkit.io.inspect",
    "instructkit.quality.cli",
    "instructkit.train.cli",
    "instructkit.eval.cli",
)


def _cmd_run(args: argparse.Namespace) -> int:
    from instructkit.pipeline import Pipeline
    from instructkit.summary import print_summary

    pipe = Pipeline.from_yaml(args.pipeline)
    if args.workers:
        pipe._config.engine.workers = args.workers if args.workers == "auto" else int(args.workers)
    result = pipe.run(out_dir=args.out, resume=args.resume, progress=not args.quiet, engine=args.engine,
                      address=args.address)
    if not args.quiet:
        print_summary(result.manifest, result.out_dir)
    return 0


def _cmd_ops(args: argparse.Namespace) -> int:
    import dataclasses

    from instructkit.ops import REGISTRY

    for name, cls in sorted(REGISTRY.items()):
        opts = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls)
                         if f.default is not dataclasses.MISSING) if dataclasses.is_dataclass(cls) else ""
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:<20} {cls.kind:<9} {doc}")
        if args.verbose and opts:
            print(f"{'':<30} {opts}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from instructkit import __version__

    parser = argparse.ArgumentParser(prog="instructkit", description="Build, check, train on and evaluate SFT datasets.")
    parser.add_argument("--version", action="version", version=f"instructkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a pipeline recipe (YAML)")
    p.add_argument("pipeline", help="path to a pipeline YAML, e.g. pipelines/quickstart.yaml")
    p.add_argument("--out", help="output directory (overrides output.dir)")
    p.add_argument("--resume", action="store_true", help="restart from the last completed barrier stage")
    p.add_argument("--workers", help="processes for row-local steps (number or 'auto')")
    p.add_argument("--engine", choices=["local", "ray"], help="execution engine (default: the recipe's, else local)")
    p.add_argument("--address", help="Ray cluster address (auto, ray://host:port); default starts a local cluster")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("ops", help="list the available operators")
    p.add_argument("-v", "--verbose", action="store_true", help="show options and defaults")
    p.set_defaults(func=_cmd_ops)

    for mod_name in _PLUGINS:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:  # an optional extra is not installed: its command explains itself
            missing = getattr(exc, "name", None) or str(exc)
            if missing and missing.startswith("instructkit"):
                continue
            cmd = mod_name.split(".")[1]
            q = sub.add_parser(cmd, help=f"(unavailable: {missing} is not installed)")
            q.set_defaults(func=lambda a, m=missing, c=cmd: _missing(c, m))
            continue
        mod.add_parser(sub)
    return parser


def _missing(cmd: str, module: str) -> int:
    extra = {"torch": "train", "ray": "ray"}.get(module.split(".")[0], "all")
    print(f"error: '{cmd}' needs {module}; install it with: pip install 'instructkit[{extra}]'", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InstructkitError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`instructkit report` and `instructkit push` subcommands (wired by instructkit/cli.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from instructkit.errors import DataError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write report.html, report.json and the dataset card for an output dir")
    p.add_argument("out_dir", help="a pipeline output directory (with manifest.json and data/)")
    p.add_argument("--no-card", action="store_true", help="do not (re)write README.md")
    p.add_argument("--license", default="other", help="license for the card's front matter (default: other)")
    p.add_argument("--gate", metavar="PRESET_OR_FILE",
                   help="also run a quality gate (preset name or suite YAML) and record it in manifest.json")
    p.set_defaults(func=run_report)

    p = subparsers.add_parser("push", help="upload a gated dataset (shards + card + report) to the Hugging Face Hub")
    p.add_argument("out_dir", help="a pipeline output directory")
    p.add_argument("--repo", required=True, help="target dataset repo, user/name")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--dry-run", action="store_true", help="only write OUT/hub_upload/ and OUT/hub_upload.txt")
    p.add_argument("--force", action="store_true", help="push even without a passed quality gate")
    p.add_argument("--license", default="other", help="license for a card generated at push time")
    p.set_defaults(func=run_push)


def run(args: argparse.Namespace) -> int:
    return args.func(args)


def run_report(args: argparse.Namespace) -> int:
    from instructkit.engine import manifest as mf
    from instructkit.quality import card, gate, report, stats

    out = Path(args.out_dir)
    manifest = stats.load_manifest(out)
    files = stats.data_files(out)
    if not files:
        raise DataError(f"{out}: no Parquet shards under data/ or quarantine/data/")
    st = stats.compute(out, manifest, files)
    code = 0
    if args.gate:
        is_file = args.gate.endswith((".yaml", ".yml")) or Path(args.gate).exists()
        suite = gate.load_suite(None if is_file else args.gate, args.gate if is_file else None, where="--gate")
        had_manifest = bool(manifest)
        manifest["gate"] = gate.run_gate(suite, st, files)
        if had_manifest:
            mf.write_manifest(out / "manifest.json", manifest)
        if not manifest["gate"]["passed"]:
            print(f"error: {gate.failure_message(manifest['gate'])}")
            code = 4
    paths = report.write(out, st, manifest)
    print(f"wrote {paths['html']} and {paths['json']}")
    if not args.no_card:
        print(f"wrote {card.write(out, st, manifest, license=args.license)}")
    return code


def run_push(args: argparse.Namespace) -> int:
    from instructkit.quality.push import push

    res = push(args.out_dir, args.repo, private=args.private, dry_run=args.dry_run, force=args.force,
               license=args.license)
    if args.dry_run:
        print(f"dry run: {len(res['files'])} files staged in {res['folder']} (list: {res['folder']}.txt); nothing uploaded")
        for f in res["files"]:
            print(f"  {f}")
    else:
        print(f"pushed {len(res['uploaded'])} files ({len(res['skipped'])} already there) to {res['url']}")
    return 0

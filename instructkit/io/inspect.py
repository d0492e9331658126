"""`instructkit inspect PATH`: what a reader makes of a file before you write a pipeline for it.

Shows the detected format and why, row counts, bad rows by reason (with the first file:line of
each, so you can open it), turns per row, roles, characters per role and a few normalized
samples. Reads with the same code as `instructkit run`, so what you see is what you get.
"""
from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from typing import Any

import numpy as np
import pyarrow.compute as pc

from instructkit.io.spec import FILE_TYPES, FORMATS, InputSpec


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("inspect", help="show the detected format, counts, field stats and samples of an input")
    p.add_argument("path", help="file, directory, glob or saved HF dataset")
    p.add_argument("--format", default="auto", choices=FORMATS, help="record format (default: detect)")
    p.add_argument("--file-type", choices=FILE_TYPES, help="container type (default: from the extension)")
    p.add_argument("-n", "--samples", type=int, default=3, help="normalized samples to print (default 3)")
    p.add_argument("--limit", type=int, default=None, help="stop after this many rows (default: read everything)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                   help="reader option, e.g. --option paths='\"best\"' (repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
    return p


def summarize(spec: InputSpec, samples: int = 3, limit: int | None = None) -> dict[str, Any]:
    """Read an input and collect the statistics `inspect` prints."""
    from instructkit.io import detect, read_input
    from instructkit.io.files import expand

    files = [spec.path] if spec.format == "hf" and not os.path.exists(spec.path) else expand(spec.path)
    if spec.format == "auto":
        det = detect(spec.path, spec.file_type, spec.columns)
        fmt, why = det.format, det.why
    else:
        fmt, why = spec.format, "given with --format"
    rows = good = 0
    reasons: Counter[str] = Counter()
    first_at: dict[str, str] = {}
    turns: list[np.ndarray] = []
    roles: Counter[str] = Counter()
    chars: dict[str, list[np.ndarray]] = {}
    picked: list[dict] = []
    for batch in read_input(spec):
        if limit is not None and rows >= limit:
            break
        if limit is not None and rows + batch.num_rows > limit:
            batch = batch.slice(0, limit - rows)
        rows += batch.num_rows
        err = batch.column("_error")
        ok = pc.is_null(err)
        if err.null_count < len(err):
            bad = batch.filter(pc.invert(ok))
            for e, f, ln in zip(bad.column("_error").to_pylist(), bad.column("_file").to_pylist(),
                                bad.column("_line").to_pylist()):
                code = e.split(":", 1)[0]
                reasons[code] += 1
                first_at.setdefault(code, f"{f}:{ln}  ({e[:120]})")
        kept = batch.filter(ok)
        good += kept.num_rows
        if not kept.num_rows:
            continue
        msgs = kept.column("messages").combine_chunks()
        turns.append(pc.list_value_length(msgs).to_numpy(zero_copy_only=False))
        flat = pc.list_flatten(msgs)
        role = flat.field("role")
        length = pc.utf8_length(flat.field("content").fill_null("")).to_numpy(zero_copy_only=False)
        role_np = np.asarray(role.to_numpy(zero_copy_only=False), dtype=object)
        for r, c in zip(*np.unique(role_np.astype(str), return_counts=True)):
            roles[str(r)] += int(c)
            chars.setdefault(str(r), []).append(length[role_np.astype(str) == r])
        if len(picked) < samples:
            picked.extend(kept.slice(0, samples - len(picked)).select(["id", "source", "messages", "meta"]).to_pylist())
    t = np.concatenate(turns) if turns else np.zeros(0, np.int64)
    return {
        "path": spec.path, "files": len(files), "format": fmt, "why": why,
        "rows": rows, "good": good, "bad": rows - good,
        "bad_by_reason": dict(reasons.most_common()), "first_bad_at": first_at,
        "turns_per_row": _dist(t), "roles": dict(roles.most_common()),
        "chars_per_role": {r: _dist(np.concatenate(v)) for r, v in chars.items()},
        "samples": picked, "limited": limit is not None and rows >= limit,
    }


def _dist(a: np.ndarray) -> dict[str, float]:
    if not len(a):
        return {}
    return {"min": int(a.min()), "median": float(np.median(a)), "mean": round(float(a.mean()), 1),
            "p95": float(np.percentile(a, 95)), "max": int(a.max())}


def _fmt_dist(d: dict[str, float]) -> str:
    if not d:
        return "-"
    return f"min {d['min']:,}  median {d['median']:,.0f}  mean {d['mean']:,.1f}  p95 {d['p95']:,.0f}  max {d['max']:,}"


def _short(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render(s: dict[str, Any]) -> str:
    lines = [f"{s['path']}  ({s['files']} file{'s' if s['files'] != 1 else ''})",
             f"format: {s['format']}  -- {s['why']}",
             f"rows: {s['rows']:,}   good: {s['good']:,}   bad: {s['bad']:,}" + ("   (stopped at --limit)" if s["limited"] else "")]
    if s["bad_by_reason"]:
        lines.append("bad rows by reason (first occurrence):")
        for code, n in s["bad_by_reason"].items():
            lines.append(f"  {code:<20} {n:>8,}   {s['first_bad_at'][code]}")
    lines.append(f"turns per row: {_fmt_dist(s['turns_per_row'])}")
    lines.append("roles: " + ", ".join(f"{r} {n:,}" for r, n in s["roles"].items()))
    for r, d in s["chars_per_role"].items():
        lines.append(f"chars per {r} turn: {_fmt_dist(d)}")
    for i, row in enumerate(s["samples"], 1):
        lines.append(f"--- sample {i}: id={row['id']} source={row['source']} meta={_short(row['meta'], 80)}")
        for m in row["messages"]:
            lines.append(f"  {m['role']:>9}: {_short(m['content'] or '')}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    spec = InputSpec.from_dict({"path": args.path, "format": args.format, "file_type": args.file_type,
                                "options": options}, where="inspect")
    summary = summarize(spec, samples=args.samples, limit=args.limit)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    else:
        print(render(summary))
    return 0


def main_inspect(argv: list[str]) -> int:
    """Standalone entry point (`python -m instructkit.io.inspect PATH`)."""
    parser = argparse.ArgumentParser(prog="instructkit")
    sub = parser.add_subparsers()
    add_parser(sub)
    args = parser.parse_args(["inspect", *argv])
    return run(args)


if __name__ == "__main__":
    import sys

    sys.exit(main_inspect(sys.argv[1:]))

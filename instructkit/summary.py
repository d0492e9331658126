"""The table printed at the end of a run: what each stage kept and dropped, and why."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(manifest: dict[str, Any], out_dir: Path, console: Console | None = None) -> None:
    if console is None:
        console = Console(stderr=False)
        if not console.is_terminal:  # logs and pipes: wide enough that reasons are not wrapped
            console = Console(stderr=False, width=140)
    table = Table(title=f"instructkit run: {manifest.get('pipeline')}", show_lines=False)
    for col, justify in (("stage", "left"), ("kind", "left"), ("in", "right"), ("out", "right"),
                         ("rejected (top reasons)", "left"), ("s", "right")):
        table.add_column(col, justify=justify)
    by_stage = manifest.get("rejects_by_stage", {})
    for name in ("00_read", "00_mix"):
        if name in by_stage:
            reasons = ", ".join(f"{k} {v}" for k, v in list(by_stage[name].items())[:3])
            table.add_row(name, "read", "", "", reasons, "")
    for st in manifest.get("stages", []):
        reasons = ", ".join(f"{k} {v}" for k, v in list(st["rejected"].items())[:3])
        if st.get("annotate_only"):
            reasons = "(annotate only)"
        table.add_row(st["stage"], st["kind"], f"{st['rows_in']:,}", f"{st['rows_out']:,}", reasons, f"{st['seconds']:.2f}")
    console.print(table)
    c = manifest["counts"]
    acc = "ok" if manifest.get("accounting", {}).get("ok") else "FAILED"
    console.print(f"read {c['read']:,} = written {c['written']:,} + rejected {c['rejected']:,}  [{acc}]  "
                  f"splits {c.get('by_split')}  in {manifest.get('seconds', 0):.1f}s")
    gate = manifest.get("gate")
    if gate is not None:
        console.print(f"quality gate: {'PASSED' if gate.get('passed') else 'FAILED'}")
    console.print(f"output: {out_dir}")

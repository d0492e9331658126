"""Side-by-side table of several evaluation runs (e.g. base vs adapter), for the terminal and markdown.

The first run is the reference: every other column also shows its difference to it, and a
difference smaller than the two runs' combined standard error is marked with `~` so a reader does
not mistake noise for an improvement.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from instructkit.errors import DataError

LOWER_IS_BETTER = {"loss", "perplexity"}
SKIP = {"tokens"}


def load_results(path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: results file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not a JSON results file ({exc.msg})") from None
    if not isinstance(doc, dict) or "results" not in doc:
        raise DataError(f"{path}: not an `instructkit eval` results file (no 'results' key)")
    doc.setdefault("label", Path(path).stem)
    return doc


def _rows(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for run in runs:
        for task, res in run["results"].items():
            for metric in res.get("metrics", {}):
                if metric.endswith("_stderr") or metric in SKIP or (task, metric) in seen:
                    continue
                seen.append((task, metric))
    return seen


def _fmt(value: float | None, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric in LOWER_IS_BETTER:
        return f"{value:.4f}"
    return f"{100 * value:.2f}"


def comparison_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: task, metric, then one column per run (with its delta to the first run)."""
    header = ["task", "metric"] + [str(r.get("label")) for r in runs]
    table = []
    for task, metric in _rows(runs):
        base_res = runs[0]["results"].get(task, {})
        base = base_res.get("metrics", {}).get(metric)
        base_se = base_res.get("metrics", {}).get(f"{metric}_stderr")
        row = [task, metric if metric in LOWER_IS_BETTER else f"{metric} (%)"]
        for i, run in enumerate(runs):
            res = run["results"].get(task, {}).get("metrics", {})
            value = res.get(metric)
            cell = _fmt(value, metric)
            if i > 0 and value is not None and base is not None:
                delta = value - base
                scale = 1 if metric in LOWER_IS_BETTER else 100
                se = math.hypot(base_se or 0.0, res.get(f"{metric}_stderr") or 0.0)
                noise = "~" if se and not math.isnan(se) and abs(delta) < se else ""
                cell += f" ({'+' if delta >= 0 else ''}{scale * delta:.2f}{noise})"
            row.append(cell)
        table.append(row)
    return header, table


def to_markdown(runs: list[dict[str, Any]]) -> str:
    header, rows = comparison_rows(runs)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    note = ("\nValues in % except loss/perplexity; (±d) is the change vs the first column; "
            "`~` marks a change smaller than the combined standard error.\n")
    return "\n".join(lines) + "\n" + note


def to_terminal(runs: list[dict[str, Any]]) -> str:
    header, rows = comparison_rows(runs)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    out += [fmt.format(*r) for r in rows]
    return "\n".join(out)

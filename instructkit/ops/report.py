"""`report` output step: write OUT/report.html, OUT/report.json and the dataset card OUT/README.md.

Placed after `quality_gate` it also shows the gate's results (it runs even when the gate failed,
so the report explains the quarantine).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from instructkit.ops.base import Operator, OutputContext, register


@register
@dataclass
class Report(Operator):
    """Self-contained HTML report + JSON of the same numbers + Hub dataset card (README.md)."""

    name = "report"
    kind = "output"
    reads = ("id", "messages")
    writes = ()

    html: str = "report.html"
    json: str = "report.json"
    card: bool = True
    license: str = "other"
    pretty_name: str | None = None
    lang_column: str | None = None
    sample_rows: int = 5

    def finalize(self, ctx: OutputContext) -> dict[str, Any]:
        from instructkit.quality import card, report, stats

        st = stats.cached(ctx.out_dir, ctx.manifest, ctx.data_files, lang_column=self.lang_column)
        paths = report.write(ctx.out_dir, st, ctx.manifest, html_name=self.html, json_name=self.json)
        out = {"report": {k: str(v.relative_to(ctx.out_dir)) for k, v in paths.items()}}
        if self.card:
            p = card.write(ctx.out_dir, st, ctx.manifest, license=self.license, pretty_name=self.pretty_name)
            out["report"]["card"] = str(p.relative_to(ctx.out_dir))
        return out

"""The dataset report: one self-contained HTML file (inline SVG charts, inline CSS, no script) + JSON.

Charts are drawn here as plain SVG rectangles so the file opens offline, in any browser, years
from now, and weighs kilobytes: no CDN, no chart library, no JavaScript.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

PALETTE = ("#3b6fb6", "#e07b39", "#4e9a5b", "#b84a62", "#7d5ba6", "#c9a227", "#3a9ea5", "#8c6d4f")


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: float) -> str:
    """Exact counts with separators (people compare them), short floats for bin edges."""
    if abs(v) >= 1e7:
        return f"{v / 1e6:.1f}M"
    if float(v).is_integer():
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


# ------------------------------------------------------------------------------------------ charts
def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, color: str = PALETTE[0],
              width: int = 520, value_fmt=_fmt) -> str:
    """Horizontal bars, one per label: funnels, reasons, language shares."""
    if not values:
        return f'<p class="empty">{_e(title)}: nothing to show</p>'
    row_h, left, right = 22, 190, 70
    h = 28 + row_h * len(values)
    vmax = max(max(values), 1e-12)
    parts = [f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{width}" height="{h}" '
             f'viewBox="0 0 {width} {h}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="0" y="14" class="t">{_e(title)}</text>']
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = 24 + i * row_h
        w = max(1.0, (width - left - right) * float(v) / vmax) if v else 0.0
        lab_s = lab if len(lab) <= 28 else lab[:27] + "…"
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" class="l">{_e(lab_s)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}">'
                     f'<title>{_e(lab)}: {_e(value_fmt(v))}</title></rect>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}" class="l">{_e(value_fmt(v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(hist: dict[str, Any], title: str, color: str = PALETTE[0], width: int = 520,
                    height: int = 200) -> str:
    """Vertical bars over equal-width bins, with axis ticks; overflow (> p99.5) noted in the title."""
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts:
        return f'<p class="empty">{_e(title)}: no values</p>'
    left, bottom, top = 48, 30, 22
    pw, ph = width - left - 10, height - bottom - top
    cmax = max(max(counts), 1)
    bw = pw / len(counts)
    over = hist.get("overflow", 0)
    sub = f" (+{over} above {_fmt(edges[-1])})" if over else ""
    parts = [f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="0" y="14" class="t">{_e(title + sub)}</text>',
             f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" class="ax"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" class="ax"/>',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="l">{_fmt(cmax)}</text>',
             f'<text x="{left - 4}" y="{top + ph}" text-anchor="end" class="l">0</text>']
    for i, c in enumerate(counts):
        if not c:
            continue
        bh = max(1.0, ph * c / cmax)
        x = left + i * bw
        parts.append(f'<rect x="{x + 0.5:.1f}" y="{top + ph - bh:.1f}" width="{max(bw - 1, 1):.1f}" height="{bh:.1f}" '
                     f'fill="{color}"><title>[{_fmt(edges[i])}, {_fmt(edges[i + 1])}): {c}</title></rect>')
    for j, anchor in ((0, "start"), (len(counts) // 2, "middle"), (len(counts), "end")):
        x = left + j * bw
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="{anchor}" class="l">{_fmt(edges[j])}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------- sections
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{margin:0 0 4px;font-size:24px} h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
.sub{color:#5c6673} .grid{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 16px}
.kpi{min-width:130px} .kpi b{display:block;font-size:22px} .kpi span{color:#5c6673;font-size:12px}
svg.chart text.t{font-size:13px;font-weight:600;fill:#1d232b} svg.chart text.l{font-size:11px;fill:#3c4450}
svg.chart .ax{stroke:#8a929c;stroke-width:1}
table{border-collapse:collapse;width:100%;background:#fff} td,th{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4} table.fixed{table-layout:fixed} table.fixed td{overflow-wrap:anywhere} .pass{color:#21763a;font-weight:600} .fail{color:#b3261e;font-weight:600} .skip{color:#8a6d00}
.msg{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;margin:2px 0}
.role{font-weight:600;color:#3b6fb6} .empty{color:#8a929c;font-style:italic}
.banner{padding:10px 14px;border-radius:6px;margin:14px 0;font-weight:600}
.banner.pass{background:#e3f4e8} .banner.fail{background:#fbe4e2} .banner.none{background:#eef1f4;color:#5c6673}
"""


def _kpis(stats: dict[str, Any], manifest: dict[str, Any]) -> str:
    counts = manifest.get("counts", {})
    items = [("rows read", counts.get("read", "–")), ("rows written", stats.get("rows", 0)),
             ("rows rejected", counts.get("rejected", stats.get("rejects", {}).get("total", 0)))]
    for split, n in sorted((stats.get("splits") or {}).items()):
        items.append((f"{split} rows", n))
    if stats.get("turns", {}).get("describe", {}).get("n"):
        items.append(("mean turns", stats["turns"]["describe"]["mean"]))
    if stats.get("n_tokens"):
        items.append(("median tokens", _fmt(stats["n_tokens"]["describe"]["p50"])))
    if "seconds" in manifest:
        items.append(("pipeline seconds", manifest["seconds"]))
    return '<div class="grid">' + "".join(
        f'<div class="card kpi"><b>{_e(_fmt(v) if isinstance(v, (int, float)) else v)}</b><span>{_e(k)}</span></div>'
        for k, v in items) + "</div>"


def _gate_banner(gate: dict[str, Any] | None) -> str:
    if not gate:
        return '<div class="banner none">No quality gate ran for this dataset.</div>'
    ok = gate.get("passed")
    failed = [r["expectation"] for r in gate.get("results", []) if not r["success"]]
    tail = "" if ok else f' — data quarantined; failed: {", ".join(dict.fromkeys(failed))}'
    return (f'<div class="banner {"pass" if ok else "fail"}">Quality gate '
            f'{_e((gate.get("suite") or {}).get("name", ""))}: {"PASSED" if ok else "FAILED"}{_e(tail)} '
            f'(mode: {_e(gate.get("mode", "?"))})</div>')


def _gate_table(gate: dict[str, Any] | None) -> str:
    if not gate:
        return '<p class="empty">No quality gate ran for this dataset.</p>'
    if not gate.get("results"):
        return f'<p class="msg">{_e(gate.get("message", ""))}</p>'

    def status(r: dict[str, Any]) -> tuple[str, str]:
        if r.get("status") == "skipped":
            return "skip", "skipped"
        return ("pass", "pass") if r["success"] else ("fail", "FAIL")

    rows = "".join(
        f'<tr><td>{_e(r["expectation"])}</td><td class="{status(r)[0]}">{status(r)[1]}</td>'
        f'<td>{_e(r.get("observed", ""))}</td><td>{_e(r.get("expected", ""))}</td><td>{_e(r.get("mode", ""))}</td>'
        f'<td>{_e(r.get("gx_type", ""))}</td></tr>' for r in gate["results"])
    return ("<table><tr><th>expectation</th><th>result</th><th>observed</th><th>expected</th><th>mode</th>"
            f"<th>great-expectations type</th></tr>{rows}</table>")


def _messages_html(msgs: list[dict[str, Any]]) -> str:
    return "".join(f'<div class="msg"><span class="role">{_e(m.get("role"))}:</span> {_e(m.get("content"))}</div>'
                   for m in msgs) or '<span class="empty">(no messages)</span>'


def _rejects_section(stats: dict[str, Any]) -> str:
    rej = stats.get("rejects") or {}
    if not rej.get("by_reason"):
        return '<p class="empty">No rows were rejected.</p>'
    labels = [f'{r["reason"]} ({r["stage"]})' for r in rej["by_reason"][:20]]
    return f'<div class="card">{bar_chart(labels, [r["count"] for r in rej["by_reason"][:20]], "Rejected rows by reason", PALETTE[3])}</div>'


def _reject_examples(stats: dict[str, Any], per_reason: int = 2) -> str:
    rej = stats.get("rejects") or {}
    ex_rows = []
    for reason, exs in (rej.get("examples") or {}).items():
        for ex in exs[:per_reason]:
            ex_rows.append(f'<tr><td>{_e(reason)}</td><td>{_e(ex.get("id", ""))}</td><td>{_e(ex.get("detail") or "")}</td>'
                           f'<td>{_e(Path(ex.get("_file") or "").name)}:{_e(ex.get("_line") if ex.get("_line") is not None else "")}</td>'
                           f'<td>{_messages_html(ex.get("messages") or [])}</td></tr>')
    if not ex_rows:
        return ""
    return ('<h2>Rejected examples</h2><table class="fixed"><colgroup><col style="width:13%"><col style="width:12%">'
            '<col style="width:20%"><col style="width:13%"><col></colgroup>'
            "<tr><th>reason</th><th>id</th><th>detail</th><th>source:line</th><th>row</th></tr>"
            + "".join(ex_rows) + "</table>")


def render(stats: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The whole report as one HTML string: verdict and pictures first, detail tables after."""
    name = manifest.get("pipeline") or Path(stats.get("out_dir", "dataset")).name
    gate = manifest.get("gate")
    sec: list[str] = [f"<h1>{_e(name)} — dataset report</h1>",
                      f'<p class="sub">{_e(stats.get("out_dir", ""))} · instructkit '
                      f'{_e((manifest.get("versions") or {}).get("instructkit", ""))}</p>',
                      _gate_banner(gate), "<h2>Overview</h2>", _kpis(stats, manifest)]

    fun = stats.get("funnel") or []
    sec.append("<h2>Stage funnel and rejects</h2>")
    top = []
    if len(fun) > 1:
        top.append(bar_chart([f["stage"] for f in fun], [f["rows"] for f in fun], "Rows after each stage", PALETTE[0]))
    sec.append('<div class="grid">' + "".join(f'<div class="card">{c}</div>' for c in top) + _rejects_section(stats) + "</div>")

    charts: list[str] = []
    for i, (role, d) in enumerate((stats.get("chars_per_role") or {}).items()):
        charts.append(histogram_chart(d["hist"], f"characters per {role} turn", PALETTE[i % len(PALETTE)]))
    for i, (role, d) in enumerate((stats.get("tokens_per_role") or {}).items()):
        charts.append(histogram_chart(d["hist"], f"tokens per row: {role}", PALETTE[(i + 4) % len(PALETTE)]))
    if stats.get("n_tokens"):
        charts.append(histogram_chart(stats["n_tokens"]["hist"], "tokens per row (total)", PALETTE[6]))
    tc = (stats.get("turns") or {}).get("counts") or {}
    if tc:
        charts.append(bar_chart([f"{k} turns" for k in tc], list(tc.values()), "Turns per conversation", PALETTE[2]))
    sec.append("<h2>Lengths</h2>")
    sec.append('<div class="grid">' + "".join(f'<div class="card">{c}</div>' for c in charts) + "</div>")

    more: list[str] = []
    for c, v in (stats.get("languages") or {}).items():
        more.append(bar_chart(list(v), list(v.values()), f"share of rows by {c}", PALETTE[4], value_fmt=lambda x: f"{x:.1%}"))
    for c, v in (stats.get("dup_clusters") or {}).items():
        if v:
            more.append(bar_chart([f"size {k}" for k in v], list(v.values()), f"clusters by size ({c})", PALETTE[5]))
    flags = stats.get("flags") or {}
    if flags:
        more.append(bar_chart(list(flags), [f["count"] for f in flags.values()], "kept rows carrying each filter flag", PALETTE[1]))
    if more:
        sec.append("<h2>Languages, duplicate clusters, filter flags</h2>")
        sec.append('<div class="grid">' + "".join(f'<div class="card">{c}</div>' for c in more) + "</div>")

    sec.append("<h2>Quality gate</h2>" + _gate_table(gate))
    if len(fun) > 1:
        rows = "".join(f'<tr><td>{_e(f["stage"])}</td><td>{f["rows"]}</td><td>'
                       f'{_e(", ".join(f"{k}: {v}" for k, v in f["rejected"].items()))}</td></tr>' for f in fun)
        sec.append(f"<h2>Stages</h2><table><tr><th>stage</th><th>rows out</th><th>rejected (reason: rows)</th></tr>{rows}</table>")
    sec.append(_reject_examples(stats))
    if flags:
        sec.append("<h2>Filter flags: example ids</h2><table><tr><th>flag</th><th>rows</th><th>example ids</th></tr>" + "".join(
            f'<tr><td>{_e(k)}</td><td>{v["count"]}</td><td>{_e(", ".join(v["ids"]))}</td></tr>'
            for k, v in flags.items()) + "</table>")
    samples = stats.get("samples") or []
    if samples:
        sec.append("<h2>Sample rows</h2><table><tr><th>id</th><th>source</th><th>messages</th></tr>" + "".join(
            f'<tr><td>{_e(s.get("id", ""))}</td><td>{_e(s.get("source", ""))}</td><td>{_messages_html(s.get("messages") or [])}</td></tr>'
            for s in samples) + "</table>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(name)} — instructkit report</title><style>{_CSS}</style></head><body><main>"
            + "\n".join(sec) + "</main></body></html>")


def report_json(stats: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """The same numbers as the HTML, for machines (CI diffs, dashboards)."""
    keep = {k: v for k, v in stats.items() if k not in ("files",)}
    return {"pipeline": manifest.get("pipeline"), "gate": manifest.get("gate"), **keep}


def write(out_dir: Path | str, stats: dict[str, Any], manifest: dict[str, Any], html_name: str = "report.html",
          json_name: str = "report.json") -> dict[str, Path]:
    out_dir = Path(out_dir)
    h, j = out_dir / html_name, out_dir / json_name
    h.write_text(render(stats, manifest), encoding="utf-8")
    j.write_text(json.dumps(report_json(stats, manifest), indent=1, default=str, ensure_ascii=False), encoding="utf-8")
    return {"html": h, "json": j}

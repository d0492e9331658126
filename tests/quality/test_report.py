"""The HTML report rendered in real headless Chromium: charts present with non-zero size and
marks, no console errors, nothing fetched from the network; report.json carries the same numbers."""
from __future__ import annotations

import json
import re
import struct
import warnings

import pytest

from instructkit.ops.base import OutputContext, build
from instructkit.quality import stats as stats_mod
from tests.quality.browser import CHART_PROBE, Chromium, find_chromium
from tests.quality.builders import data_files, rows, write_output

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="!!! CHROMIUM NOT FOUND: the report is NOT being checked in a browser. "
           "Install it with `apt-get install -y chromium` (make test does this) !!!")


def make_report(tmp_path, n=80):
    out = write_output(tmp_path / "out", rows(n))
    manifest = json.loads((out / "manifest.json").read_text())
    ctx = OutputContext(out_dir=out, data_files=data_files(out), manifest=manifest)
    gate, _ = build({"quality_gate": {}})
    manifest["gate"] = gate.finalize(ctx)["gate"]
    rep, _ = build({"report": {}})
    rep.finalize(ctx)
    return out


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@needs_chromium
def test_report_renders_charts_in_chromium(tmp_path):
    out = make_report(tmp_path)
    html = (out / "report.html").read_text()
    # self-contained: no scripts, stylesheets or images fetched from anywhere
    assert "<script" not in html and "<link" not in html and not re.search(r"""(src|href)=["']?https?:""", html)
    with Chromium(CHROMIUM) as browser:
        browser.open((out / "report.html").as_uri())
        charts = json.loads(browser.evaluate(CHART_PROBE))
        shot = browser.screenshot(tmp_path / "report.png")
        errors = browser.console_errors()
        title = browser.evaluate("document.title")
        gate_banner = browser.evaluate("document.querySelector('.banner').textContent")
    assert errors == []
    assert "unit_test" in title and "PASSED" in gate_banner
    labels = {c["label"] for c in charts}
    # one chart per role present in the data, plus tokens, turns, languages, duplicates, funnel, rejects
    roles = {m["role"] for r in rows(80) for m in r["messages"]}
    expected = {f"characters per {r} turn" for r in roles} | {
        "Rows after each stage", "Rejected rows by reason", "tokens per row (total)", "Turns per conversation",
        "share of rows by lang_user", "clusters by size (dup_cluster_size)", "tokens per row: assistant (labels)"}
    assert expected <= labels, expected - labels
    for c in charts:
        assert c["w"] > 100 and c["h"] > 30 and c["marks"] > 0, c
    w, h = png_size(shot)
    assert w == 1280 and h > 1500
    # the bars were really painted: the palette's first colour (funnel, user chars) covers pixels
    import matplotlib.image as mpimg
    import numpy as np

    from instructkit.quality.report import PALETTE

    px = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)
    blue = tuple(int(PALETTE[0][i:i + 2], 16) for i in (1, 3, 5))
    assert (np.abs(px - np.array(blue)).sum(axis=-1) <= 6).sum() > 2000


def test_report_json_matches_the_data(tmp_path):
    data = rows(80)
    out = make_report(tmp_path, n=80)
    rep = json.loads((out / "report.json").read_text())
    assert rep["rows"] == 80 and rep["gate"]["passed"] is True
    for role in ("system", "user", "assistant"):
        turns = [m for r in data for m in r["messages"] if m["role"] == role]
        hist = rep["chars_per_role"][role]["hist"]
        assert sum(hist["counts"]) + hist["overflow"] == len(turns)
        assert rep["chars_per_role"][role]["describe"]["max"] == max(len(m["content"]) for m in turns)
    n_turns = [len(r["messages"]) for r in data]
    assert rep["turns"]["counts"] == {str(k): n_turns.count(k) for k in sorted(set(n_turns))}
    assert rep["rejects"]["total"] == 6 and rep["reject_shares"]["exact_duplicate"] == round(4 / 86, 6)
    sizes = [r["dup_cluster_size"] for r in data if r["dup_cluster_size"] > 1]
    assert rep["dup_clusters"]["dup_cluster_size"] == {str(s): sizes.count(s) for s in sorted(set(sizes))}
    assert rep["flags"]["defect_flags:short_answer"]["count"] == sum(1 for r in data if r["defect_flags"])


def test_report_without_optional_columns(tmp_path):
    """Only the canonical columns: the report still renders (no token/language/dup sections)."""
    import pyarrow.parquet as pq

    out = write_output(tmp_path / "out", rows(30), rejects={})
    for f in data_files(out):
        t = pq.read_table(f)
        pq.write_table(t.select(["id", "messages", "source", "meta"]), f)
    st = stats_mod.compute(out)
    from instructkit.quality import report

    html = report.render(st, json.loads((out / "manifest.json").read_text()))
    assert "No rows were rejected" in html and "No quality gate ran" in html
    assert "tokens per row" not in html and html.count('<svg class="chart"') >= 4


if CHROMIUM is None:  # pragma: no cover - say it where people look
    warnings.warn("Chromium not found: the browser check of the report is SKIPPED", stacklevel=1)

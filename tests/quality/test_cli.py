"""`instructkit report` on an existing output directory, through the real CLI."""
from __future__ import annotations

import json

from tests.quality.builders import rows, write_output
from tests.quality.test_push import cli


def test_report_command_writes_report_and_card(tmp_path):
    out = write_output(tmp_path / "out", rows(30))
    r = cli("report", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").exists() and (out / "README.md").exists()
    assert json.loads((out / "report.json").read_text())["rows"] == 30


def test_report_command_with_failing_gate_records_it(tmp_path):
    out = write_output(tmp_path / "out", rows(30))  # 30 rows < strict's min_rows 100
    r = cli("report", str(out), "--gate", "strict", cwd=tmp_path)
    assert r.returncode == 4 and "min_rows: observed 30 rows" in r.stdout
    gate = json.loads((out / "manifest.json").read_text())["gate"]
    assert gate["passed"] is False and gate["suite"]["name"] == "strict"
    assert "FAILED" in (out / "report.html").read_text()


def test_report_command_on_missing_dir_is_one_line(tmp_path):
    r = cli("report", str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 2 and "no Parquet shards" in r.stderr and "Traceback" not in r.stderr

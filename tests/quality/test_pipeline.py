"""The gate and report as pipeline steps, through the real engine and CLI: a passing run
publishes data + report + card; a failing run exits non-zero with one line naming the
expectation, and its train-ready data is in quarantine/, not data/."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # a full engine run (tokenizer + great-expectations import) per test

STORIES = REPO / "examples" / "models" / "stories260K"


def run_recipe(tmp_path, gate_options, n=40):
    data = tmp_path / "alpaca.jsonl"
    lines = [json.dumps({"instruction": f"Tell me a short story about a cat called number {i}.", "input": "",
                         "output": f"Once upon a time cat {i} slept in the sun."}) for i in range(n)]
    lines.append(json.dumps({"instruction": "Say nothing.", "input": "", "output": ""}))
    data.write_text("\n".join(lines) + "\n")
    recipe = {"name": "gate_e2e", "inputs": [{"path": str(data), "format": "alpaca"}],
              "steps": ["normalize", "drop_empty_turns",
                        {"tokenize": {"tokenizer": str(STORIES), "template": "chatml"}},
                        {"quality_gate": gate_options}, {"report": {"license": "mit"}}],
              "split": {"eval_ratio": 0.2, "seed": 1},
              "output": {"dir": str(tmp_path / "out")}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    r = subprocess.run([sys.executable, "-m", "instructkit", "run", str(path), "-q"], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                                                        "HF_HUB_OFFLINE": "1", "GX_ANALYTICS_ENABLED": "false",
                                                        "HOME": str(tmp_path)})
    return r, tmp_path / "out"


def test_passing_pipeline_publishes_with_report_and_card(tmp_path):
    r, out = run_recipe(tmp_path, {"preset": "sft_default"})
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["gate"]["passed"] is True and manifest["status"] == "ok"
    ran = {x["expectation"] for x in manifest["gate"]["results"] if x.get("status") != "skipped"}
    assert {"label_tokens_positive", "no_empty_assistant", "unique_ids"} <= ran
    assert list((out / "data").glob("train-*.parquet")) and not (out / "quarantine").exists()
    assert (out / "report.html").stat().st_size > 5000 and "PASSED" in (out / "report.html").read_text()
    assert "license: mit" in (out / "README.md").read_text()
    assert json.loads((out / "report.json").read_text())["rows"] == manifest["counts"]["written"] == 40


def test_failing_pipeline_is_quarantined_and_exits_non_zero(tmp_path):
    r, out = run_recipe(tmp_path, {"preset": "sft_default", "expect": {"min_rows": 1000}})
    assert r.returncode == 4
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "min_rows: observed 40 rows, expected >= 1000 rows" in err
    assert not (out / "data").exists() and list((out / "quarantine" / "data").glob("*.parquet"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "gate_failed" and manifest["gate"]["passed"] is False
    # the report still explains what happened
    assert "FAILED" in (out / "report.html").read_text()

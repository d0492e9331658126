"""The CLI end to end in a subprocess: real YAML recipes, one-line errors, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instructkit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "INSTRUCTKIT_QUIET": "1", "HF_HUB_OFFLINE": "1",
                                            "PYTHONPATH": str(REPO)})


def write_recipe(tmp_path: Path, **overrides) -> Path:
    data = tmp_path / "alpaca.jsonl"
    lines = [json.dumps({"instruction": f"Name a colour number {i}.", "input": "", "output": f"Blue {i}."})
             for i in range(20)]
    lines[3] = '{"instruction": "broken", "output": '  # malformed JSON line -> reject, not a crash
    lines.append(json.dumps({"instruction": "Say nothing.", "input": "", "output": ""}))
    data.write_text("\n".join(lines) + "\n")
    recipe = {"name": "t", "inputs": [{"path": str(data), "format": "alpaca"}],
              "steps": ["normalize", "drop_empty_turns"], "output": {"dir": str(tmp_path / "out")}}
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_run_writes_data_rejects_and_manifest(tmp_path):
    r = cli("run", str(write_recipe(tmp_path)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "read 21 = written 19 + rejected 2" in r.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rejects_by_stage"] == {"00_read": {"malformed_json": 1}, "02_drop_empty_turns": {"no_assistant_turn": 1}}


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"stepz": []}, "unknown key 'stepz'"),
        ({"steps": [{"length_filter": {"min_chars": 3}}]}, "steps[0].length_filter: unknown option 'min_chars'"),
        ({"steps": ["dedupe"]}, "unknown operator 'dedupe'"),
        ({"output": {"dir": "x", "shards": 3}}, "output: unknown key 'shards'"),
        ({"split": {"eval_ratio": 1.5}}, "split.eval_ratio"),
    ],
)
def test_config_mistakes_are_one_line_errors(tmp_path, overrides, message):
    r = cli("run", str(write_recipe(tmp_path, **overrides)), cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_yaml_and_missing_input(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [\n  - path: x\n")
    r = cli("run", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and "invalid YAML" in r.stderr and "Traceback" not in r.stderr
    recipe = write_recipe(tmp_path, inputs=[{"path": str(tmp_path / "nope.jsonl")}])
    r = cli("run", str(recipe), cwd=tmp_path)
    assert r.returncode == 2 and "nope.jsonl" in r.stderr and "Traceback" not in r.stderr


def test_ops_lists_registered_operators(tmp_path):
    r = cli("ops", cwd=tmp_path)
    assert r.returncode == 0
    for name in ("normalize", "drop_empty_turns", "validate_roles", "length_filter"):
        assert name in r.stdout

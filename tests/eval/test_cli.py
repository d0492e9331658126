"""`instructkit eval` end to end on stories260K: base + adapter, every task type, results and table."""
from __future__ import annotations

import argparse
import json

import pytest
from transformers import AutoModelForCausalLM

from instructkit.errors import ConfigError
from instructkit.eval import cli

from .conftest import MODEL_DIR
from .test_model import _write_adapter


def _parse(argv):
    parser = argparse.ArgumentParser(prog="instructkit")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    return parser.parse_args(argv)


def test_base_vs_adapter_one_command(tmp_path, eval_data_dir, capsys):
    _write_adapter(tmp_path / "tuned", AutoModelForCausalLM.from_pretrained(str(MODEL_DIR)))
    out = tmp_path / "runs"
    args = _parse(["eval", "--model", str(MODEL_DIR), "--base", "--adapter", str(tmp_path / "tuned"),
                   "--tasks", "openbook_qa,winogrande,gsm8k,bbh,ifeval", "--limit", "3",
                   "--data-dir", str(eval_data_dir), "--max-new-tokens", "12", "--out", str(out),
                   "--markdown", str(tmp_path / "t.md"), "--log-samples", "-q"])
    assert args.func(args) == 0
    base = json.loads((out / "base.json").read_text())
    tuned = json.loads((out / "tuned.json").read_text())
    assert set(base["results"]) == {"openbook_qa", "winogrande", "gsm8k", "bbh", "ifeval"}
    assert base["results"]["openbook_qa"]["n"] == 3
    assert base["results"]["bbh"]["n"] == 6 and len(base["results"]["bbh"]["subtasks"]) == 2
    assert len(base["samples"]["ifeval"]) == 3
    assert base["versions"]["torch"] and base["config"]["limit"] == 3
    assert tuned["adapter"].endswith("tuned") and base["adapter"] is None
    lls_base = base["samples"]["openbook_qa"][0]["loglikelihoods"]
    lls_tuned = tuned["samples"]["openbook_qa"][0]["loglikelihoods"]
    assert lls_base != lls_tuned
    table = capsys.readouterr().out
    assert "base" in table and "tuned" in table and "openbook_qa" in table
    assert (tmp_path / "t.md").read_text().startswith("| task | metric | base | tuned |")

    args = _parse(["eval", "compare", str(out / "base.json"), str(out / "tuned.json")])
    assert args.func(args) == 0
    assert "ifeval" in capsys.readouterr().out


def test_typo_in_task_fails_before_loading(tmp_path):
    args = _parse(["eval", "--model", str(tmp_path / "missing"), "--tasks", "arc_esy"])
    with pytest.raises(ConfigError, match="unknown task 'arc_esy'"):
        args.func(args)
    args = _parse(["eval", "--tasks", "arc_easy"])
    with pytest.raises(ConfigError, match="--model is required"):
        args.func(args)

"""`instructkit inspect`: counts, reasons with file:line, role stats and samples."""
from __future__ import annotations

import argparse
import json

from instructkit.io import inspect
from tests.io.conftest import FIXTURES, jsonl


def _run(capsys, *argv) -> str:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    inspect.add_parser(sub)
    args = parser.parse_args(["inspect", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_inspect_broken_file(capsys):
    out = _run(capsys, str(FIXTURES / "broken_alpaca.jsonl"), "-n", "1")
    assert "format: alpaca" in out and "rows: 8   good: 2   bad: 6" in out
    assert "malformed_json" in out and "broken_alpaca.jsonl:2" in out
    assert "user: Name a primary color." in out


def test_inspect_json_summary(capsys):
    src = jsonl(FIXTURES / "sharegpt_oasst.jsonl")
    out = _run(capsys, str(FIXTURES / "sharegpt_oasst.jsonl"), "--json", "-n", "2")
    s = json.loads(out)
    assert s["format"] == "sharegpt" and s["rows"] == len(src) and s["bad"] == 0
    n_turns = [len(r["conversations"]) + ("system" in r) for r in src]
    assert s["turns_per_row"]["max"] == max(n_turns) and s["turns_per_row"]["min"] == min(n_turns)
    assert sum(s["roles"].values()) == sum(n_turns)
    assert len(s["samples"]) == 2


def test_inspect_via_cli_main(capsys):
    from instructkit.cli import main

    assert main(["inspect", str(FIXTURES / "oasst2_trees.jsonl"), "--option", 'paths="best"', "-n", "0"]) == 0
    out = capsys.readouterr().out
    assert "format: oasst" in out and "good: 2" in out and "empty_conversation" in out
    assert main(["inspect", str(FIXTURES / "empty.jsonl")]) == 2
    assert "the file is empty" in capsys.readouterr().err

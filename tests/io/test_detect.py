"""Auto-detection picks the right format for each real-shaped fixture and says why."""
from __future__ import annotations

import pytest

from instructkit.io import detect, detect_format
from instructkit.io.convert import source_name
from instructkit.io.spec import InputSpec
from tests.io.conftest import FIXTURES


@pytest.mark.parametrize("name, fmt", [
    ("alpaca_seed.jsonl", "alpaca"), ("alpaca_seed.json", "alpaca"), ("alpaca_seed.csv", "alpaca"),
    ("alpaca_seed.parquet", "alpaca"), ("alpaca_seed.arrow", "alpaca"), ("alpaca_history.json", "alpaca"),
    ("sharegpt_oasst.jsonl", "sharegpt"), ("glaive_toolcall_sharegpt.json", "sharegpt"),
    ("openai_oasst.jsonl", "openai"), ("prompt_completion_seed.jsonl", "prompt_completion"),
    ("dolly_shape.jsonl", "dolly"), ("dolly_ja.jsonl", "alpaca"), ("oasst2_trees.jsonl", "oasst"),
    ("broken_alpaca.jsonl", "alpaca"),
])
def test_detects_fixture_formats(name, fmt):
    assert detect_format(FIXTURES / name) == fmt
    d = detect(FIXTURES / name)
    assert d.format == fmt and d.why and d.fields


def test_jsonl_named_json_is_read_as_lines(tmp_path):
    p = tmp_path / "lines.json"
    p.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n')
    d = detect(p)
    assert (d.format, d.file_type) == ("prompt_completion", "jsonl")


@pytest.mark.parametrize("path, name", [
    ("data/alpaca.jsonl.gz", "alpaca"), ("x/alpaca_en_original.part-*.jsonl.gz", "alpaca_en_original"),
    ("/d/sharegpt/*.gz", "sharegpt"), ("dir/", "dir"), ("file.parquet", "file"),
])
def test_source_name(path, name):
    assert source_name(InputSpec(path)) == name
    assert source_name(InputSpec(path, name="mine")) == "mine"

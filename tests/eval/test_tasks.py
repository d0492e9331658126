"""Task YAMLs: every built-in parses, bad files fail with one-line messages naming the problem."""
from __future__ import annotations

import pytest

from instructkit.errors import ConfigError, DataError
from instructkit.eval.runner import mc_items
from instructkit.eval.tasks import builtin_tasks, load_task, read_rows


def test_builtin_tasks_parse():
    names = set(builtin_tasks())
    assert {"ifeval", "arc_easy", "arc_challenge", "piqa", "boolq", "openbook_qa", "commonsense_qa", "copa",
            "winogrande", "gsm8k", "bbh", "heldout"} <= names
    for name in names:
        spec = load_task(name)
        assert spec.name == name


def test_unknown_key_and_bad_type(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: t\noutput_type: multiple_choice\ndata: x.jsonl\nchoicez: choices\n")
    with pytest.raises(ConfigError, match="unknown key 'choicez'"):
        load_task(str(p))
    p.write_text("name: t\noutput_type: guess\n")
    with pytest.raises(ConfigError, match="output_type 'guess'"):
        load_task(str(p))
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        load_task("nope")


def test_missing_data_file_names_the_data_dir(tmp_path):
    with pytest.raises(DataError, match="data file not found.*--data-dir"):
        mc_items(load_task("arc_easy"), tmp_path, limit=2)


def test_custom_task_file_relative_data_and_missing_field(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"q": "2+2=", "opts": ["4", "5"], "label": 0}\n{"q": "x"}\n')
    p = tmp_path / "t.yaml"
    p.write_text("name: t\noutput_type: multiple_choice\ndata: d.jsonl\ncontext: '{{ q }}'\nchoices: opts\n"
                 "gold: label\n")
    with pytest.raises(DataError, match=r"d.jsonl:2: task 't' expects field 'label'"):
        mc_items(load_task(str(p)), None, limit=None)
    items = mc_items(load_task(str(p)), None, limit=1)
    assert items[0].contexts == ["2+2=", "2+2="] and items[0].continuations == [" 4", " 5"]


def test_read_rows_reports_bad_json_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: invalid JSON"):
        read_rows(p)


def test_gold_must_be_an_index(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"q": "2+2=", "opts": ["4", "5"], "label": "A"}\n')
    p = tmp_path / "t.yaml"
    p.write_text("name: t\noutput_type: multiple_choice\ndata: d.jsonl\ncontext: '{{ q }}'\nchoices: opts\n"
                 "gold: label\n")
    with pytest.raises(DataError, match="must be the index of the gold choice"):
        mc_items(load_task(str(p)), None, limit=None)

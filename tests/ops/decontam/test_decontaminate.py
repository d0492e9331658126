"""decontaminate catches leaked benchmark text and explains each reject."""
from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from instructkit import Pipeline
from instructkit.errors import ConfigError
from tests.conftest import make_table


def _sample(name):
    path = resources.files("instructkit.ops.decontam") / "samples" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_catches_planted_ifeval_prompt_and_gsm8k_question(tmp_path):
    ife = _sample("ifeval_sample")[7]
    gsm = _sample("gsm8k_sample")[3]
    convs = [
        [("user", "Hi! " + ife["prompt"].upper()), ("assistant", "Here you go.")],  # case changes do not hide it
        [("user", gsm["question"]), ("assistant", "Let me think step by step.")],
        [("user", "How do I bake bread at home without a bread machine?"), ("assistant", "Mix flour, water, yeast.")],
        [("user", "Solve this."), ("assistant", gsm["answer"])],  # the answer leaks too
    ]
    res = Pipeline(["decontaminate"]).run([make_table(convs)], out_dir=tmp_path)
    assert res.read().column("id").to_pylist() == ["row2"]
    assert res.read().column("contam_ngrams").to_pylist() == [0]
    rej = res.rejects()
    details = {i: json.loads(d) for i, d in zip(rej.column("id").to_pylist(), rej.column("detail").to_pylist())}
    assert details["row0"]["benchmark"] == "ifeval_sample" and details["row0"]["item_id"] == str(ife["key"])
    assert details["row0"]["ngram"] in " ".join(re.findall(r"\w+", ife["prompt"].lower()))
    assert len(details["row0"]["ngram"].split()) == 13
    assert details["row1"]["benchmark"] == "gsm8k_sample" and details["row1"]["item_id"] == "4"
    assert details["row3"]["benchmark"] == "gsm8k_sample"
    assert set(rej.column("reason").to_pylist()) == {"benchmark_contamination"}


def test_user_task_files_short_items_and_flag_mode(tmp_path):
    mt = tmp_path / "mt_bench" / "question.jsonl"
    mt.parent.mkdir()
    mt.write_text(json.dumps({"question_id": 81, "turns": ["Compose an engaging travel blog post about a recent trip to "
                                                           "Hawaii, highlighting cultural experiences.", "Rewrite it."]}) + "\n")
    bbh = tmp_path / "bbh_task.json"
    bbh.write_text(json.dumps({"canary": "x", "examples": [{"input": "not ( True ) and ( True ) is", "target": "False"},
                                                          {"input": "Sort the following words alphabetically: List: oven "
                                                                    "costume counterpart", "target": "costume counterpart oven"}]}))
    convs = [
        [("user", "compose an engaging travel blog post about a recent trip to hawaii highlighting cultural"), ("assistant", "ok")],
        [("user", "Sort the following words alphabetically: List: oven costume counterpart"), ("assistant", "done")],
        [("user", "not true is false"), ("assistant", "yes")],
    ]
    step = {"decontaminate": {"benchmarks": [str(mt), {"path": str(bbh), "name": "bbh"}],
                                "min_ngram": 8, "annotate_only": True}}
    res = Pipeline([step]).run([make_table(convs)], out_dir=tmp_path / "out")
    kept = res.read()
    assert kept.num_rows == 3  # annotate_only: flagged, not dropped
    assert kept.column("contam_benchmark").to_pylist() == ["mt_bench", "bbh", None]
    # the 7-word BBH input is below min_ngram=8: too short to count as leakage


def test_bad_benchmark_specs_are_config_errors(tmp_path):
    t = make_table([[("user", "q"), ("assistant", "a")]])
    with pytest.raises(ConfigError, match="does not exist"):
        Pipeline([{"decontaminate": {"benchmarks": [str(tmp_path / "nope.jsonl")]}}]).run([t], out_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown built-in"):
        Pipeline([{"decontaminate": {"benchmarks": ["builtin:mmlu"]}}]).run([t], out_dir=tmp_path / "b")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{oops\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2"):
        Pipeline([{"decontaminate": {"benchmarks": [str(bad)]}}]).run([t], out_dir=tmp_path / "c")

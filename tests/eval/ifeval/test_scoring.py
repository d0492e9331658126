"""Our IFEval checkers on the official GPT-4 responses vs the official checker's golden labels.

Golden labels (tests/fixtures/eval/ifeval, Apache-2.0) are the official checker's output; the
published scores are 76.85/79.81 (prompt-level strict/loose) and 83.53/85.70 (instruction-level).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructkit.eval.ifeval import CHECKERS, follows, load_prompts, score
from instructkit.eval.ifeval.scoring import loose_variants

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "eval" / "ifeval"
OFFICIAL = {"strict": (76.85, 83.53), "loose": (79.81, 85.70)}


def _read(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIX / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def prompts():
    return {p.prompt: p for p in load_prompts(FIX / "input_data.jsonl")}


def test_all_25_instruction_types_are_implemented(prompts):
    used = {i for p in prompts.values() for i in p.instruction_id_list}
    assert len(used) == 25
    assert used == set(CHECKERS)


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_scores_match_official_golden_labels(prompts, mode, capsys):
    gold_rows = _read(f"gpt4_eval_results_{mode}.jsonl")
    n_prompts = n_inst = prompt_ok = inst_ok = agree = 0
    disagreements = []
    for row in gold_rows:
        p = prompts[row["prompt"]]
        ours = follows(p, row["response"], loose=(mode == "loose"))
        n_prompts += 1
        prompt_ok += all(ours)
        for iid, kw, a, b in zip(p.instruction_id_list, p.kwargs, ours, row["follow_instruction_list"]):
            n_inst += 1
            inst_ok += a
            agree += a == b
            if a != b:
                disagreements.append(f"{mode} key={p.key} {iid} kwargs={kw}: ours={a} official={b}")
    prompt_acc, inst_acc = 100 * prompt_ok / n_prompts, 100 * inst_ok / n_inst
    with capsys.disabled():
        print(f"\nIFEval {mode}: prompt {prompt_acc:.2f} (official {OFFICIAL[mode][0]}), "
              f"instruction {inst_acc:.2f} (official {OFFICIAL[mode][1]}), "
              f"agreement {agree}/{n_inst}; {len(disagreements)} disagreements")
        for d in disagreements:
            print("  DISAGREE", d)
    assert n_prompts == 540
    assert abs(prompt_acc - OFFICIAL[mode][0]) <= 0.5
    assert abs(inst_acc - OFFICIAL[mode][1]) <= 0.5
    assert agree / n_inst >= 0.99


def test_score_api_over_responses_file(prompts):
    responses = {r["prompt"]: r["response"] for r in _read("input_response_data_gpt4_20231107_145030.jsonl")}
    items = list(prompts.values())[:60]
    out = score(items, [responses[p.prompt] for p in items])
    m = out["metrics"]
    assert set(m) == {"prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"}
    assert m["prompt_level_strict_acc"] <= m["prompt_level_loose_acc"] <= 1
    assert len(out["samples"]) == 60


def test_loose_variants_drop_first_last_line_and_stars():
    v = loose_variants("Sure!\n**Hello**\nBye")
    assert "**Hello**\nBye" in v and "Sure!\n**Hello**" in v and "**Hello**" in v and "Hello" in v
    assert len(v) == 8

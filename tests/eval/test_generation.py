"""GSM8K / BBH answer extraction, and batched greedy generation equal to one-by-one generation."""
from __future__ import annotations

import json
from pathlib import Path

from instructkit.eval.generation import (bbh_extract, exact_match, generate, gsm8k_extract, gsm8k_reference,
                                         truncate_at_stop)

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "eval"


def test_gsm8k_extraction_on_reference_answers_is_100_percent():
    rows = [json.loads(x) for x in (FIX / "gsm8k" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 200
    for row in rows:
        # the gold number is read independently here: the text after '####', commas removed
        gold = row["answer"].split("####")[-1].strip().replace(",", "")
        assert gsm8k_reference(row["answer"]) == gold
        ok, pred, _ = exact_match(row["answer"], row["answer"], "gsm8k_number")
        assert ok and pred == gold, row["answer"][-80:]


def test_gsm8k_extraction_formats():
    assert gsm8k_extract("so 3 + 4 = 7 apples. The answer is 7.") == "7"
    assert gsm8k_extract("The answer is $1,250.00 in total") == "1250"
    assert gsm8k_extract("first 12, then 30") == "30"
    assert gsm8k_extract("The final answer is -3. Check: 5 - 8 = -3") == "-3"
    assert gsm8k_extract("no digits here") is None


def test_bbh_exact_match():
    assert bbh_extract(" (B)\n\nQ: next") == "(b)"
    assert exact_match("Let's think. So the answer is (A).", "(A)", "bbh_answer")[0]
    assert exact_match("True.", "True", "bbh_answer")[0]
    assert not exact_match("False", "True", "bbh_answer")[0]


def test_truncate_at_earliest_stop():
    assert truncate_at_stop("abc\n\nQ: x. y", ["Q:", "\n\n"]) == "abc"
    assert truncate_at_stop("abc", []) == "abc"


def test_batched_left_padded_generation_equals_single(tiny_lm):
    prompts = ["Once upon a time", "Lily went to the park. She saw", "Tom", "The sun was"]
    batched = generate(tiny_lm.model, tiny_lm.tokenizer, prompts, max_new_tokens=24, until=["."], batch_size=4)
    single = [generate(tiny_lm.model, tiny_lm.tokenizer, [p], max_new_tokens=24, until=["."], batch_size=1)[0]
              for p in prompts]
    assert batched == single
    assert all("." not in out for out in batched)
    assert any(out.strip() for out in batched)

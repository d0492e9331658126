"""acc / acc_norm / stderr on vendored llm-foundry samples (stories260K), including partial scoring."""
from __future__ import annotations

import math

import numpy as np
import pytest

from instructkit.eval.loglikelihood import score_requests
from instructkit.eval.multiple_choice import MCItem, evaluate_items, item_requests, mean_stderr
from instructkit.eval.runner import mc_items
from instructkit.eval.tasks import load_task


def test_mean_stderr_matches_numpy():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    mean, se = mean_stderr(values)
    assert mean == pytest.approx(np.mean(values))
    assert se == pytest.approx(np.std(values, ddof=1) / math.sqrt(len(values)))


@pytest.mark.parametrize("task", ["openbook_qa", "winogrande"])
def test_predictions_are_argmax_of_scored_loglikelihoods(tiny_lm, eval_data_dir, task):
    items = mc_items(load_task(task), eval_data_dir, limit=None)
    assert len(items) >= 12
    out = evaluate_items(tiny_lm.model, tiny_lm.tokenizer, items, batch_size=16, log_samples=True)
    # recompute predictions from plain (unshared, batch 1) scores, independently of the metric code
    acc, acc_norm = [], []
    for item, sample in zip(items, out["samples"]):
        lls = [s.logprob for s in score_requests(tiny_lm.model, item_requests(tiny_lm.tokenizer, item),
                                                 batch_size=1, shared_prefix=False)]
        assert np.allclose(lls, sample["loglikelihoods"], rtol=1e-5, atol=1e-5)
        acc.append(float(np.argmax(lls) == item.gold))
        acc_norm.append(float(np.argmax(np.array(lls) / np.array(item.norm_lengths)) == item.gold))
    assert out["metrics"]["acc"] == pytest.approx(np.mean(acc))
    assert out["metrics"]["acc_norm"] == pytest.approx(np.mean(acc_norm))
    assert out["metrics"]["acc_stderr"] == pytest.approx(np.std(acc, ddof=1) / math.sqrt(len(acc)))


def test_partial_scoring_uses_each_context_with_the_same_continuation(tiny_lm, eval_data_dir):
    items = mc_items(load_task("winogrande"), eval_data_dir, limit=3)
    for item in items:
        assert len(set(item.continuations)) == 1 and len(set(item.contexts)) == 2
        reqs = item_requests(tiny_lm.tokenizer, item)
        assert reqs[0].context != reqs[1].context


def test_acc_norm_can_differ_from_acc(tiny_lm):
    # a short unlikely answer vs a long likely-per-char answer: normalisation changes the pick
    item = MCItem(["Once upon a time, there was a"] * 2, [" zq", " little girl named Lily who loved to play"], 1,
                  [2, 40])
    out = evaluate_items(tiny_lm.model, tiny_lm.tokenizer, [item], log_samples=True)
    lls = out["samples"][0]["loglikelihoods"]
    assert out["samples"][0]["pred_norm"] == int(np.argmax(np.array(lls) / np.array([2, 40])))

"""Multiple-choice scoring by log-likelihood: acc and acc_norm with standard errors.

Two item shapes cover the llm-foundry ICL formats:
- one context, several continuations (ARC, PIQA, BoolQ, OpenBookQA, CommonsenseQA, COPA):
  `{query, choices[], gold}`; the prediction is the choice whose continuation is most likely.
- several contexts, one continuation ("partial scoring", WinoGrande): `{context_options[],
  continuation, gold}`; the prediction is the context under which the shared continuation is most
  likely.
acc_norm divides each choice's log-likelihood by its length in characters (as lm-evaluation-harness
does), which removes the bias toward short answers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from instructkit.eval.loglikelihood import Request, encode_pair, prefix_ids, score_requests


@dataclass
class MCItem:
    contexts: list[str]        # one per choice (equal for ordinary items)
    continuations: list[str]   # one per choice (equal for partial-scoring items)
    gold: int
    norm_lengths: list[int]    # characters of the text that differs between choices
    doc: dict[str, Any] | None = None


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample std with n-1, over sqrt(n)), as lm-evaluation-harness reports."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def item_requests(tokenizer: Any, item: MCItem) -> list[Request]:
    prefix = prefix_ids(tokenizer)
    return [encode_pair(tokenizer, c, x, prefix) for c, x in zip(item.contexts, item.continuations)]


def evaluate_items(model: Any, tokenizer: Any, items: list[MCItem], batch_size: int = 16,
                   max_length: int | None = None, shared_prefix: bool = True,
                   log_samples: bool = False) -> dict[str, Any]:
    """Score every choice of every item; return metrics (+ per-item logs when asked)."""
    per_item = [item_requests(tokenizer, it) for it in items]
    flat = [r for reqs in per_item for r in reqs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores = score_requests(model, flat, batch_size=batch_size, max_length=max_length, pad_id=pad,
                            shared_prefix=shared_prefix)
    acc, acc_norm, samples = [], [], []
    pos = 0
    for item, reqs in zip(items, per_item):
        lls = [s.logprob for s in scores[pos:pos + len(reqs)]]
        pos += len(reqs)
        pred = max(range(len(lls)), key=lambda i: lls[i])
        normed = [ll / max(n, 1) for ll, n in zip(lls, item.norm_lengths)]
        pred_norm = max(range(len(normed)), key=lambda i: normed[i])
        acc.append(float(pred == item.gold))
        acc_norm.append(float(pred_norm == item.gold))
        if log_samples:
            samples.append({"doc": item.doc, "loglikelihoods": lls, "pred": pred, "pred_norm": pred_norm,
                            "gold": item.gold, "acc": acc[-1], "acc_norm": acc_norm[-1]})
    m_acc, se_acc = mean_stderr(acc)
    m_norm, se_norm = mean_stderr(acc_norm)
    out: dict[str, Any] = {"metrics": {"acc": m_acc, "acc_stderr": se_acc, "acc_norm": m_norm,
                                       "acc_norm_stderr": se_norm}, "n": len(items)}
    if log_samples:
        out["samples"] = samples
    return out

"""Log-likelihood scoring vs a direct transformers forward pass, and batch invariance (stories260K)."""
from __future__ import annotations

import json

import pytest
import torch

from instructkit.eval.loglikelihood import Request, encode_pair, score_requests

from pathlib import Path

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "eval"


def _openbook_requests(tok, n_items=12):
    rows = [json.loads(x) for x in (FIX / "mc_eval" / "openbook_qa.jsonl").read_text().splitlines()][:n_items]
    return [encode_pair(tok, r["query"], " " + c) for r in rows for c in r["choices"]]


def _direct(model, tok, context: str, continuation: str) -> float:
    """Independent reference: one unpadded forward over BOS + context + continuation."""
    ctx = [tok.bos_token_id] + tok.encode(context, add_special_tokens=False)
    whole = [tok.bos_token_id] + tok.encode(context + continuation, add_special_tokens=False)
    cont = whole[len(ctx):]
    with torch.no_grad():
        logits = model(torch.tensor([whole])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def _close(a: float, b: float, tol: float = 1e-5) -> bool:
    # fp32 sums of ~100 nats: 1e-5 relative (1e-5 absolute for small values)
    return abs(a - b) <= tol * max(1.0, abs(a))


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_scores_equal_direct_forward(tiny_lm, shared_prefix):
    tok, model = tiny_lm.tokenizer, tiny_lm.model
    rows = [json.loads(x) for x in (FIX / "mc_eval" / "openbook_qa.jsonl").read_text().splitlines()][:6]
    pairs = [(r["query"], " " + c) for r in rows for c in r["choices"]]
    ours = score_requests(model, [encode_pair(tok, c, x) for c, x in pairs], batch_size=16, shared_prefix=shared_prefix)
    for (c, x), s in zip(pairs, ours):
        ref = _direct(model, tok, c, x)
        assert _close(s.logprob, ref), (c[-30:], x, s.logprob, ref)


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_batch_size_1_and_16_agree(tiny_lm, shared_prefix):
    reqs = _openbook_requests(tiny_lm.tokenizer)
    one = score_requests(tiny_lm.model, reqs, batch_size=1, shared_prefix=shared_prefix)
    many = score_requests(tiny_lm.model, reqs, batch_size=16, shared_prefix=shared_prefix)
    worst = max(abs(a.logprob - b.logprob) / max(1.0, abs(a.logprob)) for a, b in zip(one, many))
    assert worst <= 1e-5
    assert [a.n_tokens for a in one] == [b.n_tokens for b in many]
    assert [a.is_greedy for a in one] == [b.is_greedy for b in many]


def test_shared_prefix_equals_plain(tiny_lm):
    reqs = _openbook_requests(tiny_lm.tokenizer)
    plain = score_requests(tiny_lm.model, reqs, batch_size=8, shared_prefix=False)
    shared = score_requests(tiny_lm.model, reqs, batch_size=8, shared_prefix=True)
    for a, b in zip(plain, shared):
        assert _close(a.logprob, b.logprob)


def test_padding_content_does_not_matter(tiny_lm):
    reqs = _openbook_requests(tiny_lm.tokenizer, n_items=4)
    a = score_requests(tiny_lm.model, reqs, batch_size=16, pad_id=0, shared_prefix=False)
    b = score_requests(tiny_lm.model, reqs, batch_size=16, pad_id=400, shared_prefix=False)
    assert [x.logprob for x in a] == [x.logprob for x in b]


def test_order_and_duplicates_preserved(tiny_lm):
    reqs = _openbook_requests(tiny_lm.tokenizer, n_items=2)
    doubled = reqs + reqs[::-1]
    scores = score_requests(tiny_lm.model, doubled, batch_size=3)
    n = len(reqs)
    assert [s.logprob for s in scores[:n]] == [s.logprob for s in scores[n:]][::-1]


def test_greedy_flag_matches_argmax(tiny_lm):
    tok, model = tiny_lm.tokenizer, tiny_lm.model
    ctx = [tok.bos_token_id] + tok.encode("Once upon a time", add_special_tokens=False)
    with torch.no_grad():
        nxt = int(model(torch.tensor([ctx])).logits[0, -1].argmax())
    other = (nxt + 1) % model.config.vocab_size
    s = score_requests(model, [Request(tuple(ctx), (nxt,)), Request(tuple(ctx), (other,))])
    assert s[0].is_greedy and not s[1].is_greedy
    assert s[0].logprob > s[1].logprob


def test_trailing_context_space_moves_to_continuation(tiny_lm):
    tok = tiny_lm.tokenizer
    assert encode_pair(tok, "The cat sat ", "on the mat") == encode_pair(tok, "The cat sat", " on the mat")

"""Batched, batch-invariant log-likelihood of continuations given contexts.

Why it is batch-invariant: sequences are right-padded, so under causal attention a real token
never sees a pad token, and the log-softmax is taken only over the gathered positions of each
sequence. A score therefore does not depend on what else is in the batch or on the pad id (up to
float summation order in the matrix kernels, ~1e-7 relative in fp32).

Why it is fast: identical (context, continuation) token sequences are scored once, sequences are
sorted by length so batches carry little padding, and when several choices share one context
(ARC, BoolQ, CommonsenseQA, ...) all of them are packed into ONE row after a single copy of the
context, with an attention mask that keeps the choices from seeing each other
(`shared_prefix=True`); a 4-choice question then costs one context instead of four.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from instructkit.errors import DataError


@dataclass(frozen=True)
class Request:
    context: tuple[int, ...]
    continuation: tuple[int, ...]


@dataclass
class Score:
    logprob: float
    is_greedy: bool
    n_tokens: int


def prefix_ids(tokenizer: Any) -> list[int]:
    """What a sequence starts with: BOS when the tokenizer has one (as in pretraining), else EOS."""
    for tok_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tok_id is not None:
            return [int(tok_id)]
    return []


def encode_pair(tokenizer: Any, context: str, continuation: str, prefix: list[int] | None = None) -> Request:
    """Tokenize like lm-evaluation-harness: the continuation is the tail of encode(context + continuation).

    Trailing whitespace of the context moves to the continuation, so " Paris" is scored as one word.
    """
    n_space = len(context) - len(context.rstrip())
    if n_space:
        continuation = context[-n_space:] + continuation
        context = context[:-n_space]
    whole = tokenizer.encode(context + continuation, add_special_tokens=False)
    ctx = tokenizer.encode(context, add_special_tokens=False) if context else []
    cont = whole[len(ctx):]
    if not cont:
        raise DataError(f"continuation {continuation!r} encodes to no tokens after context {context[-40:]!r}")
    start = list(prefix if prefix is not None else prefix_ids(tokenizer))
    if start and ctx[:len(start)] == start:
        start = []  # the context already begins with it (chat templates often write the BOS text)
    if not start and not ctx:
        raise DataError("empty context and the tokenizer has no BOS/EOS token to condition on")
    return Request(tuple(start + ctx), tuple(cont))


def _sharing_pays(group: list[Request]) -> bool:
    """Pack a group only when the repeated context is a real share of the work (>= 25% of tokens)."""
    n_ctx = len(group[0].context)
    plain = sum(n_ctx + len(r.continuation) for r in group)
    return (len(group) - 1) * n_ctx >= 0.25 * plain


def _truncate(req: Request, max_length: int) -> tuple[list[int], int]:
    """Model input (all tokens but the last, left-truncated) and how many final positions are scored."""
    full = list(req.context) + list(req.continuation)
    inp = full[:-1][-max_length:]
    n_cont = min(len(req.continuation), len(inp))
    return inp + [full[-1]], n_cont


@torch.inference_mode()
def score_requests(model: Any, requests: list[Request], batch_size: int = 16, max_length: int | None = None,
                   pad_id: int = 0, shared_prefix: bool = True) -> list[Score]:
    """Log P(continuation | context) for every request, in request order."""
    if not requests:
        return []
    max_length = max_length or int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    device = next(model.parameters()).device
    unique = list(dict.fromkeys(requests))
    results: dict[Request, Score] = {}
    if shared_prefix:
        groups: dict[tuple[int, ...], list[Request]] = {}
        for r in unique:
            groups.setdefault(r.context, []).append(r)
        shared = [g for g in groups.values()
                  if len(g) > 1 and len(g[0].context) + max(len(r.continuation) for r in g) <= max_length
                  and _sharing_pays(g)]
        in_shared = {r for g in shared for r in g}
        shared.sort(key=lambda g: -(len(g[0].context) + sum(len(r.continuation) for r in g)))
        batch_groups: list[list[Request]] = []
        for group in shared:
            if batch_groups and sum(map(len, batch_groups)) + len(group) > batch_size:
                results.update(_score_shared(model, batch_groups, pad_id, device))
                batch_groups = []
            batch_groups.append(group)
        if batch_groups:
            results.update(_score_shared(model, batch_groups, pad_id, device))
        unique = [r for r in unique if r not in in_shared]
    order = sorted(unique, key=lambda r: -(len(r.context) + len(r.continuation)))
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        results.update(zip(batch, _score_batch(model, batch, max_length, pad_id, device)))
    return [results[r] for r in requests]


def _score_batch(model: Any, batch: list[Request], max_length: int, pad_id: int, device: torch.device) -> list[Score]:
    seqs = [_truncate(r, max_length) for r in batch]
    width = max(len(s) - 1 for s, _ in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    rows, cols, targets, owner = [], [], [], []
    for i, (full, n_cont) in enumerate(seqs):
        inp = full[:-1]
        ids[i, :len(inp)] = torch.tensor(inp)
        first = len(inp) - n_cont
        rows += [i] * n_cont
        cols += list(range(first, len(inp)))
        targets += full[len(full) - n_cont:]
        owner += [i] * n_cont
    # Right padding under causal attention: no real token can see a pad, so no mask is needed
    # (and without one SDPA may use its fused causal kernel).
    logits = model(input_ids=ids.to(device)).logits
    picked = logits[torch.tensor(rows, device=device), torch.tensor(cols, device=device)].float()
    return _collect(picked, targets, owner, len(seqs), device)


def _collect(picked: torch.Tensor, targets: list[int], owner: list[int], n: int, device: torch.device) -> list[Score]:
    logp = torch.log_softmax(picked, dim=-1)
    tgt = torch.tensor(targets, device=device)
    tok_lp = logp.gather(1, tgt[:, None])[:, 0].double()
    greedy = (logp.argmax(dim=-1) == tgt)
    own = torch.tensor(owner, device=device)
    sums = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, own, tok_lp)
    misses = torch.zeros(n, dtype=torch.long, device=device).index_add_(0, own, (~greedy).long())
    counts = torch.bincount(own, minlength=n)
    return [Score(float(s), int(m) == 0, int(c)) for s, m, c in zip(sums.tolist(), misses.tolist(), counts.tolist())]


def _score_shared(model: Any, groups: list[list[Request]], pad_id: int,
                  device: torch.device) -> dict[Request, Score]:
    """Score all choices of each group in ONE row: the context once, then every continuation.

    Row layout: context, then each continuation (minus its last token, which is only a target).
    A custom attention mask lets each continuation see the context and its own earlier tokens,
    never another continuation, and position ids restart after the context for each one, so
    every continuation is computed exactly as in its own unpadded forward pass; the context's
    work is done once per question instead of once per choice.
    """
    rows_tokens: list[list[int]] = []
    rows_pos: list[list[int]] = []
    segments: list[list[tuple[int, int]]] = []  # per row: (start, length) of each continuation input
    for g in groups:
        ctx = list(g[0].context)
        tokens, pos, segs = ctx[:], list(range(len(ctx))), []
        for r in g:
            inp = list(r.continuation[:-1])
            segs.append((len(tokens), len(inp)))
            tokens += inp
            pos += list(range(len(ctx), len(ctx) + len(inp)))
        rows_tokens.append(tokens)
        rows_pos.append(pos)
        segments.append(segs)
    width = max(len(t) for t in rows_tokens)
    b = len(groups)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    pos_ids = torch.zeros((b, width), dtype=torch.long)
    allowed = torch.zeros((b, width, width), dtype=torch.bool)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    flat: list[Request] = []
    rows, cols, targets, owner = [], [], [], []
    for i, g in enumerate(groups):
        n_ctx = len(g[0].context)
        n = len(rows_tokens[i])
        ids[i, :n] = torch.tensor(rows_tokens[i])
        pos_ids[i, :n] = torch.tensor(rows_pos[i])
        allowed[i, :n_ctx, :n_ctx] = causal[:n_ctx, :n_ctx]
        for r, (start, length) in zip(g, segments[i]):
            if length:
                allowed[i, start:start + length, :n_ctx] = True
                allowed[i, start:start + length, start:start + length] = causal[:length, :length]
            k = len(flat)
            flat.append(r)
            rows += [i] * len(r.continuation)
            cols += [n_ctx - 1] + list(range(start, start + length))
            targets += list(r.continuation)
            owner += [k] * len(r.continuation)
        idx = torch.arange(n, width)
        allowed[i, idx, idx] = True  # padding attends to itself only (no empty softmax rows)
    if all(length == 0 for segs in segments for _, length in segs):
        # single-token continuations (yes/no, A-E): the rows are just contexts, plain causal attention
        logits = model(input_ids=ids.to(device)).logits
    else:
        dtype = next(model.parameters()).dtype
        mask = torch.zeros((b, 1, width, width), dtype=dtype)
        mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                       position_ids=pos_ids.to(device)).logits
    picked = logits[torch.tensor(rows, device=device), torch.tensor(cols, device=device)].float()
    scores = _collect(picked, targets, owner, len(flat), device)
    return dict(zip(flat, scores))

"""Held-out loss and perplexity on a pipeline's eval split.

The tuned model should predict held-out assistant replies better than the base; this measures
exactly that: the token-weighted mean negative log-likelihood of each conversation's last
assistant message given everything before it, rendered with the evaluation chat template (the
same one used for training), and its exponential (perplexity).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from instructkit.errors import DataError
from instructkit.eval.loglikelihood import encode_pair, prefix_ids, score_requests


def eval_split_files(pipeline_out: str | Path) -> list[Path]:
    out = Path(pipeline_out)
    files = sorted((out / "data").glob("eval-*.parquet")) if out.is_dir() else []
    if not files and out.is_file() and out.suffix == ".parquet":
        files = [out]
    if not files:
        raise DataError(f"{out}: no eval split found (expected {out}/data/eval-*.parquet from `instructkit run` "
                        f"with an eval split, or a .parquet file with a messages column)")
    return files


def read_conversations(pipeline_out: str | Path, limit: int | None = None) -> list[list[dict[str, str]]]:
    import pyarrow.parquet as pq

    convs: list[list[dict[str, str]]] = []
    for path in eval_split_files(pipeline_out):
        table = pq.read_table(path)
        if "messages" not in table.column_names:
            raise DataError(f"{path}: no 'messages' column (columns: {table.column_names})")
        convs.extend(table.column("messages").to_pylist())
        if limit is not None and len(convs) >= limit:
            return convs[:limit]
    return convs


def heldout_loss(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], render: Any,
                 batch_size: int = 16, max_length: int | None = None, log_samples: bool = False) -> dict[str, Any]:
    """`render(messages)` must return the inference prompt (generation prompt included)."""
    requests, kept = [], []
    eos = tokenizer.eos_token or ""
    prefix = prefix_ids(tokenizer)
    for i, conv in enumerate(conversations):
        last = max((j for j, m in enumerate(conv or []) if m["role"] == "assistant"), default=None)
        if last is None or not conv[last]["content"]:
            continue  # nothing to predict in this row; counted in n_skipped
        context = render(conv[:last])
        requests.append(encode_pair(tokenizer, context, conv[last]["content"] + eos, prefix))
        kept.append(i)
    if not requests:
        raise DataError("held-out split has no conversation with a non-empty assistant reply")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores = score_requests(model, requests, batch_size=batch_size, max_length=max_length, pad_id=pad,
                            shared_prefix=False)
    total_lp = sum(s.logprob for s in scores)
    total_tokens = sum(s.n_tokens for s in scores)
    loss = -total_lp / total_tokens
    out: dict[str, Any] = {"metrics": {"loss": loss, "perplexity": math.exp(loss), "tokens": total_tokens},
                           "n": len(requests), "n_skipped": len(conversations) - len(requests)}
    if log_samples:
        out["samples"] = [{"row": i, "logprob": s.logprob, "tokens": s.n_tokens} for i, s in zip(kept, scores)]
    return out

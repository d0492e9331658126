"""Held-out loss on a pipeline-style eval split equals a direct token-by-token computation."""
from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from instructkit.errors import DataError
from instructkit.eval.heldout import heldout_loss, read_conversations
from instructkit.eval.prompting import render_plain

CONVS = [
    [{"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": "Once upon a time, there was a cat."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who is Lily?"},
     {"role": "assistant", "content": "Lily is a little girl."}],
    [{"role": "user", "content": "no reply"}],
]


def _write_split(out_dir):
    (out_dir / "data").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a", "b", "c"], "messages": CONVS}), out_dir / "data" / "eval-00000.parquet")


def test_loss_equals_direct_computation(tmp_path, tiny_lm):
    _write_split(tmp_path)
    convs = read_conversations(tmp_path)
    out = heldout_loss(tiny_lm.model, tiny_lm.tokenizer, convs, render_plain, batch_size=2)
    tok, model = tiny_lm.tokenizer, tiny_lm.model
    total, count = 0.0, 0
    for conv in CONVS[:2]:
        ctx_text = render_plain(conv[:-1])
        ctx = [tok.bos_token_id] + tok.encode(ctx_text, add_special_tokens=False)
        whole = [tok.bos_token_id] + tok.encode(ctx_text + conv[-1]["content"] + tok.eos_token,
                                                add_special_tokens=False)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
        for i in range(len(ctx), len(whole)):
            total += float(logp[i - 1, whole[i]])
            count += 1
    assert out["n"] == 2 and out["n_skipped"] == 1
    assert out["metrics"]["tokens"] == count
    assert out["metrics"]["loss"] == pytest.approx(-total / count, rel=1e-5)
    assert out["metrics"]["perplexity"] == pytest.approx(math.exp(-total / count), rel=1e-5)


def test_missing_eval_split_is_explained(tmp_path):
    with pytest.raises(DataError, match="no eval split found"):
        read_conversations(tmp_path)

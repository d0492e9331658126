"""The training loop on real (tiny) data: accumulation == big batch, exact resume, loss falls,
GPT-2 Conv1D end to end, adapters from a real run load in PEFT."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from instructkit.train.adapter_io import add_lora, load_adapter
from instructkit.train.config import LoraSettings
from instructkit.train.data import collate, load_dataset_dir
from instructkit.train.loop import (MicroBatchStream, accumulate_gradients, evaluate, loss_full_logits, read_log,
                                    train, warmup_cosine)
from instructkit.train.lora import lora_layers, trainable_parameters

from .conftest import STORIES, train_config, write_pipeline_dir


def lora_stories(seed: int = 0):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32)
    add_lora(model, LoraSettings(r=4, alpha=8))
    with torch.no_grad():  # non-zero B so A gets gradients too
        for layer in lora_layers(model).values():
            layer.lora_B.weight.normal_(0, 0.02)
    return model.train()


def grads(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in trainable_parameters(model)]


def test_grad_accumulation_equals_one_big_batch(dataset_dir):
    ds = load_dataset_dir(dataset_dir, max_length=128, pack=False)
    rows = ds.train
    cpu = torch.device("cpu")
    model = lora_stories()
    big_loss, big_tokens = accumulate_gradients(model, [collate(rows, [0, 1, 2, 3, 4, 5])], loss_full_logits, cpu, None)
    big = grads(model)
    model.zero_grad(set_to_none=True)
    # uneven micro-batches with different label-token counts: a per-micro-batch mean would differ
    micro = [collate(rows, [0]), collate(rows, [1, 2, 3]), collate(rows, [4, 5])]
    acc_loss, acc_tokens = accumulate_gradients(model, micro, loss_full_logits, cpu, None)
    acc = grads(model)
    assert acc_tokens == big_tokens
    assert acc_loss == pytest.approx(big_loss, rel=1e-6)
    for g_acc, g_big in zip(acc, big):
        torch.testing.assert_close(g_acc, g_big, rtol=1e-4, atol=1e-7)
    assert any(g.abs().max() > 0 for g in acc)


def test_loop_k_by_b_equals_one_batch_of_k_times_b(dataset_dir, tmp_path):
    a = train(train_config(dataset_dir, tmp_path / "a", batch_size=2, grad_accum=2, max_steps=3), show_progress=False)
    b = train(train_config(dataset_dir, tmp_path / "b", batch_size=4, grad_accum=1, max_steps=3), show_progress=False)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5)


def test_resume_reproduces_the_uninterrupted_run_exactly(dataset_dir, tmp_path):
    lora = LoraSettings(r=4, alpha=8, dropout=0.1)  # dropout: the RNG state must be restored too
    full = train(train_config(dataset_dir, tmp_path / "full", max_steps=9, lora=lora, eval_every=4),
                 show_progress=False)
    cfg = train_config(dataset_dir, tmp_path / "cut", max_steps=9, lora=lora, eval_every=4)
    first = train(cfg, stop_after_steps=5, show_progress=False)
    assert first.steps == 5 and not first.adapter_dir.exists()
    second = train(cfg, show_progress=False)
    assert len(second.losses) == 4
    assert first.losses + second.losses == full.losses  # bit-exact on CPU
    # the whole log (loss, lr, grad norm, eval loss, token counts) matches; only timing differs
    strip = lambda path: [{k: v for k, v in e.items() if k != "tok_s"} for e in read_log(path)]  # noqa: E731
    assert strip(second.log_path) == strip(full.log_path)
    assert any("eval_loss" in e for e in read_log(full.log_path))
    for p, q in zip(trainable_parameters(load_adapter(AutoModelForCausalLM.from_pretrained(STORIES), full.adapter_dir,
                                                      trainable=True)),
                    trainable_parameters(load_adapter(AutoModelForCausalLM.from_pretrained(STORIES),
                                                      second.adapter_dir, trainable=True))):
        assert torch.equal(p, q)


def test_same_seed_same_run_other_seed_other_run(dataset_dir, tmp_path):
    a = train(train_config(dataset_dir, tmp_path / "a", max_steps=3), show_progress=False)
    b = train(train_config(dataset_dir, tmp_path / "b", max_steps=3), show_progress=False)
    c = train(train_config(dataset_dir, tmp_path / "c", max_steps=3, seed=1), show_progress=False)
    assert a.losses == b.losses
    assert a.losses != c.losses


def test_loss_falls_on_real_conversations_and_adapter_loads_in_peft(dataset_dir, tmp_path):
    peft = pytest.importorskip("peft")
    cfg = train_config(dataset_dir, tmp_path / "run", max_steps=20, batch_size=4, lr=3e-3, warmup_steps=2,
                       eval_every=10, max_length=256)
    ds = load_dataset_dir(dataset_dir, max_length=256)
    base = AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32)
    base_eval = evaluate(base, ds.eval, 8, loss_full_logits, torch.device("cpu"), None, 0)
    result = train(cfg, show_progress=False)
    assert np.mean(result.losses[-5:]) < 0.85 * np.mean(result.losses[:5])
    assert result.eval_loss < base_eval - 0.5  # held-out conversations, not just memorised rows
    assert result.plot_path is not None and result.plot_path.stat().st_size > 1000
    assert result.plot_path.read_bytes()[:4] == b"\x89PNG"

    ids = torch.tensor([ds.eval.input_ids[0].tolist()])
    ours = load_adapter(AutoModelForCausalLM.from_pretrained(STORIES), result.adapter_dir).eval()
    theirs = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(STORIES), result.adapter_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(theirs(ids).logits, ours(ids).logits, rtol=0, atol=1e-5)
        assert (ours(ids).logits - base(ids).logits).abs().max() > 1e-2


def test_gpt2_conv1d_model_trains_and_loads_in_peft(tmp_path, pairs):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=512, n_embd=32, n_layer=2, n_head=4, n_positions=256, bos_token_id=1, eos_token_id=2)
    GPT2LMHeadModel(cfg).save_pretrained(tmp_path / "gpt2")
    data = write_pipeline_dir(tmp_path / "ds", pairs)
    conf = train_config(data, tmp_path / "run", max_steps=8, lr=2e-2, max_length=256)
    conf.model = str(tmp_path / "gpt2")
    result = train(conf, show_progress=False)
    assert result.losses[-1] < result.losses[0]
    ids = torch.tensor([pairs[0][0]])
    ours = load_adapter(GPT2LMHeadModel.from_pretrained(tmp_path / "gpt2"), result.adapter_dir).eval()
    theirs = peft.PeftModel.from_pretrained(GPT2LMHeadModel.from_pretrained(tmp_path / "gpt2"),
                                            result.adapter_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(theirs(ids).logits, ours(ids).logits, rtol=0, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_losses(dataset_dir, tmp_path):
    a = train(train_config(dataset_dir, tmp_path / "a", max_steps=2), show_progress=False)
    b = train(train_config(dataset_dir, tmp_path / "b", max_steps=2, gradient_checkpointing=True), show_progress=False)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5)


def test_schedule_and_stream():
    assert warmup_cosine(0, warmup=2, total=10) == 0.0
    assert warmup_cosine(1, warmup=2, total=10) == 0.5
    assert warmup_cosine(2, warmup=2, total=10) == 1.0
    assert warmup_cosine(10, warmup=2, total=10, min_ratio=0.1) == pytest.approx(0.1)
    s = MicroBatchStream(10, 4, seed=3)
    epoch0 = s.rows(0) + s.rows(1) + s.rows(2)
    assert sorted(epoch0) == list(range(10)) and len(s.rows(2)) == 2
    assert MicroBatchStream(10, 4, seed=3).rows(4) == s.rows(4)  # pure function of (seed, index)


def test_rerunning_a_finished_run_trains_nothing_and_changed_config_is_explained(dataset_dir, tmp_path):
    from instructkit.errors import DataError

    cfg = train_config(dataset_dir, tmp_path / "run", max_steps=2)
    train(cfg, show_progress=False)
    again = train(cfg, show_progress=False)
    assert again.steps == 2 and again.losses == []
    cfg.lora = LoraSettings(r=8, alpha=8)
    with pytest.raises(DataError, match="does not match the current config.*--no-resume"):
        train(cfg, show_progress=False)

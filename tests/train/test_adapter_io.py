"""PEFT interoperability: our adapters load in PEFT (and back) with identical outputs.

PEFT is a test-only dependency; instructkit.train never imports it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from instructkit.errors import DataError
from instructkit.train.adapter_io import (add_lora, adapter_state_dict, load_adapter, merge_lora, save_adapter,
                                         save_merged)
from instructkit.train.config import LoraSettings
from instructkit.train.lora import lora_layers

from .conftest import STORIES

peft = pytest.importorskip("peft")


def stories():
    return AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)
    path = tmp_path_factory.mktemp("gpt2")
    GPT2LMHeadModel(cfg).save_pretrained(path)
    return path


def perturb_b(model, seed: int = 0) -> None:
    """Non-zero B so the adapter actually changes the outputs (a zero-B test cannot fail)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.weight.copy_(torch.randn(layer.lora_B.weight.shape, generator=g) * 0.05)


CASES = {
    "llama-all-linear": (lambda d: stories(), LoraSettings(r=4, alpha=8, target_modules="all-linear")),
    "llama-rslora-subset": (lambda d: stories(), LoraSettings(r=8, alpha=4, use_rslora=True,
                                                                target_modules=["q_proj", "v_proj", "down_proj"])),
    "gpt2-conv1d": (lambda d: GPT2LMHeadModel.from_pretrained(d).eval(), LoraSettings(r=4, alpha=16)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_our_adapter_loads_in_peft_with_equal_logits_and_merge(case, tmp_path, gpt2_dir):
    make, lora = CASES[case]
    ours = make(gpt2_dir)
    add_lora(ours, lora)
    perturb_b(ours)
    ours.eval()
    ids = torch.randint(3, 90, (2, 17), generator=torch.Generator().manual_seed(1))
    base_logits = make(gpt2_dir)(ids).logits
    with torch.no_grad():
        our_logits = ours(ids).logits
    assert (our_logits - base_logits).abs().max() > 1e-3  # the adapter does something

    save_adapter(ours, tmp_path / "adapter", base_model_name_or_path="base")
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["task_type"] == "CAUSAL_LM" and cfg["r"] == lora.r

    peft_model = peft.PeftModel.from_pretrained(make(gpt2_dir), tmp_path / "adapter").eval()
    # Zero missing/unexpected keys: PEFT's view of its adapter equals the file, and loading the
    # file into PEFT reports nothing missing or unexpected among adapter weights.
    theirs_sd = peft.get_peft_model_state_dict(peft_model)
    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert set(theirs_sd) == set(saved)
    result = peft.set_peft_model_state_dict(peft_model, saved)
    assert [k for k in result.missing_keys if "lora_" in k] == []
    assert result.unexpected_keys == []
    for key, value in saved.items():
        assert torch.equal(theirs_sd[key], value), key

    with torch.no_grad():
        peft_logits = peft_model(ids).logits
    torch.testing.assert_close(peft_logits, our_logits, rtol=0, atol=1e-5)

    with torch.no_grad():
        peft_merged = peft_model.merge_and_unload()(ids).logits
        our_merged = merge_lora(ours)(ids).logits
    assert not lora_layers(ours)
    torch.testing.assert_close(our_merged, peft_merged, rtol=0, atol=1e-5)
    torch.testing.assert_close(our_merged, our_logits, rtol=0, atol=1e-4)


@pytest.mark.parametrize("case", ["llama-rslora-subset", "gpt2-conv1d"])
def test_peft_saved_adapter_loads_in_ours(case, tmp_path, gpt2_dir):
    make, lora = CASES[case]
    config = peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=lora.target_modules,
                             use_rslora=lora.use_rslora, task_type="CAUSAL_LM")
    peft_model = peft.get_peft_model(make(gpt2_dir), config)
    torch.manual_seed(5)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    peft_model.save_pretrained(tmp_path / "peft")
    peft_model.eval()
    ids = torch.randint(3, 90, (1, 23), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = peft_model(ids).logits
        ours = load_adapter(make(gpt2_dir), tmp_path / "peft").eval()
        got = ours(ids).logits
    assert not any(p.requires_grad for p in ours.parameters())
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_merged_checkpoint_is_a_plain_transformers_model(tmp_path):
    model = stories()
    add_lora(model, LoraSettings(r=2, alpha=2, target_modules=["o_proj"]))
    perturb_b(model)
    ids = torch.tensor([[1, 40, 50, 60, 70]])
    with torch.no_grad():
        before = model(ids).logits
    save_merged(model, tmp_path / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert not any("lora" in k for k in reloaded.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, before, rtol=0, atol=1e-4)


def test_mismatched_adapter_is_refused(tmp_path):
    model = stories()
    add_lora(model, LoraSettings(r=2, alpha=2, target_modules=["o_proj"]))
    save_adapter(model, tmp_path / "a")
    cfg_path = tmp_path / "a" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["target_modules"] = ["q_proj"]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="does not fit this model"):
        load_adapter(stories(), tmp_path / "a")
    cfg["use_dora"] = True
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="DoRA"):
        load_adapter(stories(), tmp_path / "a")


def test_state_dict_keys_use_peft_names():
    model = stories()
    add_lora(model, LoraSettings(r=2, alpha=2, target_modules=["q_proj"]))
    keys = sorted(adapter_state_dict(model))
    assert keys[0] == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    assert len(keys) == 2 * 5

"""Target-module selection follows PEFT's rules (checked against PEFT itself where it applies)."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from instructkit.errors import ConfigError
from instructkit.train.lora import LoraLayer
from instructkit.train.targets import compact_names, inject_lora, matches, resolve_targets


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    return LlamaForCausalLM(cfg)


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=32))


def peft_targets(model, target_modules) -> set[str]:
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=target_modules, task_type="CAUSAL_LM"))
    prefix = "base_model.model."
    return {n[len(prefix):] for n, m in peft_model.named_modules() if hasattr(m, "lora_A") and n.startswith(prefix)}


def test_rules():
    assert matches(["q_proj"], "model.layers.0.self_attn.q_proj")
    assert not matches(["proj"], "model.layers.0.self_attn.q_proj")  # suffix means a whole name part
    assert matches(r".*\.0\..*q_proj", "model.layers.0.self_attn.q_proj")
    assert not matches("q_proj", "model.layers.0.self_attn.q_proj")  # a string is a full-match regex


@pytest.mark.parametrize("spec", ["all-linear", ["q_proj", "v_proj"], r"model\.layers\.1\.mlp\.(up|down)_proj",
                                  ["layers.0.self_attn.o_proj"]])
def test_same_layers_as_peft_llama(spec):
    ours = set(resolve_targets(tiny_llama(), spec))
    assert ours == peft_targets(tiny_llama(), spec)
    assert "lm_head" not in ours


def test_same_layers_as_peft_gpt2_all_linear():
    ours = set(resolve_targets(tiny_gpt2(), "all-linear"))
    assert ours == peft_targets(tiny_gpt2(), "all-linear")
    assert any(n.endswith("c_attn") for n in ours) and "lm_head" not in ours


def test_inject_freezes_everything_else_and_compacts_names():
    model = tiny_llama()
    saved = inject_lora(model, "all-linear", r=2, alpha=4)
    assert saved == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert sum(isinstance(m, LoraLayer) for m in model.modules()) == 2 * 7


def test_compact_names_keeps_full_paths_when_suffixes_would_widen_the_set():
    model = tiny_llama()
    chosen = ["model.layers.0.self_attn.q_proj"]
    assert compact_names(model, chosen) == chosen


def test_errors_are_clear():
    with pytest.raises(ConfigError, match="matches no linear layer.*q_proj"):
        resolve_targets(tiny_llama(), ["query"])
    with pytest.raises(ConfigError, match="only nn.Linear and Conv1D"):
        resolve_targets(tiny_llama(), ["embed_tokens"])

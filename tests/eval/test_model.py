"""Merging a PEFT-format LoRA adapter without PEFT gives the same outputs as PEFT itself."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import save_file

from instructkit.errors import DataError
from instructkit.eval.model import load_model

from .conftest import MODEL_DIR  # noqa: F401  (documents where the model comes from)


def _write_adapter(path, model, r=4, alpha=8, targets=("q_proj", "v_proj")):
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in targets:
            tensors[f"base_model.model.{name}.lora_A.weight"] = torch.randn(r, mod.in_features, generator=g) * 0.1
            tensors[f"base_model.model.{name}.lora_B.weight"] = torch.randn(mod.out_features, r, generator=g) * 0.1
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
        "target_modules": list(targets), "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
        "base_model_name_or_path": str(MODEL_DIR), "inference_mode": True}))
    return tensors


def test_merged_adapter_matches_peft(tmp_path):
    peft = pytest.importorskip("peft")
    base = load_model(str(MODEL_DIR))
    _write_adapter(tmp_path / "ad", base.model)
    merged = load_model(str(MODEL_DIR), adapter=tmp_path / "ad")
    reference = peft.PeftModel.from_pretrained(load_model(str(MODEL_DIR)).model, str(tmp_path / "ad")).eval()
    ids = torch.tensor([[1, 300, 301, 302, 400, 401]])
    with torch.no_grad():
        ours = merged.model(ids).logits
        theirs = reference(ids).logits
        plain = base.model(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not torch.allclose(ours, plain, atol=1e-3)  # the adapter really changed something


def test_loading_an_adapter_does_not_import_peft(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    _write_adapter(tmp_path / "ad", AutoModelForCausalLM.from_pretrained(str(MODEL_DIR)))
    for name in [m for m in sys.modules if m == "peft" or m.startswith("peft.")]:
        monkeypatch.delitem(sys.modules, name)  # forget any earlier import; restored after the test
    load_model(str(MODEL_DIR), adapter=tmp_path / "ad")
    assert "peft" not in sys.modules


def test_bad_adapters_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="adapter_config.json: not found"):
        load_model(str(MODEL_DIR), adapter=tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8,
                                                              "use_dora": True}))
    with pytest.raises(DataError, match="DoRA"):
        load_model(str(MODEL_DIR), adapter=tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    save_file({"base_model.model.model.layers.0.nope.lora_A.weight": torch.zeros(4, 64),
               "base_model.model.model.layers.0.nope.lora_B.weight": torch.zeros(64, 4)},
              str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(DataError, match="not a Linear layer"):
        load_model(str(MODEL_DIR), adapter=tmp_path)


def test_missing_model_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="cannot load"):
        load_model(str(tmp_path / "nowhere"))


def test_adapter_saved_by_our_trainer_merges_to_the_same_model(tmp_path):
    adapter_io = pytest.importorskip("instructkit.train.adapter_io")
    from instructkit.train.config import LoraSettings
    from instructkit.train.lora import lora_layers
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(str(MODEL_DIR)).eval()
    adapter_io.add_lora(trained, LoraSettings(r=4, alpha=16.0, target_modules="all-linear", use_rslora=True))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in lora_layers(trained).values():  # B starts at zero: give it values so the test can fail
            layer.lora_B.weight.copy_(torch.randn(layer.lora_B.weight.shape, generator=g) * 0.05)
    adapter_io.save_adapter(trained, tmp_path / "ad", base_model_name_or_path=str(MODEL_DIR))
    merged = load_model(str(MODEL_DIR), adapter=tmp_path / "ad")
    ids = torch.tensor([[1, 300, 301, 302, 400, 401]])
    with torch.no_grad():
        diff = (merged.model(ids).logits - trained(ids).logits).abs().max().item()
    assert diff < 1e-4, diff

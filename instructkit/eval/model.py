"""Load a model to evaluate: a local directory or Hub id, plus an optional PEFT-format LoRA adapter.

The adapter is merged into the base weights (W += scale * B @ A) straight from
`adapter_config.json` + `adapter_model.safetensors`, so evaluating a tuned model needs neither PEFT
nor our trainer at run time, and the merged model runs at base-model speed.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instructkit.errors import ConfigError, DataError

PEFT_PREFIX = "base_model.model."


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    name: str
    adapter: str | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def _dtype(name: str) -> torch.dtype:
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise ConfigError(f"--dtype must be one of {sorted(table)}, got {name!r}")
    return table[name]


def load_model(name_or_path: str, adapter: str | Path | None = None, dtype: str = "float32",
               device: str | None = None) -> LoadedModel:
    """Model + tokenizer ready for scoring (eval mode, pad token set, adapter merged)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=_dtype(dtype))
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"--model {name_or_path}: cannot load a causal LM ({first})") from None
    if tokenizer.pad_token_id is None:
        # padding positions are masked or ignored everywhere, so any id works; eos/unk are common choices
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if adapter is not None:
        merge_adapter(model, adapter)
    model.eval()
    if device:
        model.to(device)
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(name_or_path),
                       adapter=str(adapter) if adapter else None)


def read_lora_config(adapter_dir: str | Path) -> dict[str, Any]:
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.exists():
        raise DataError(f"{path}: not found (is {adapter_dir} a PEFT LoRA adapter directory?)")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    refusals = [
        (cfg.get("peft_type", "LORA") != "LORA", f"peft_type is {cfg.get('peft_type')!r}; only LORA can be merged"),
        (bool(cfg.get("use_dora")), "use_dora is true (DoRA is not supported)"),
        (bool(cfg.get("rank_pattern")) or bool(cfg.get("alpha_pattern")), "per-layer rank/alpha patterns are not supported"),
        (bool(cfg.get("modules_to_save")), "modules_to_save is set (fully trained extra modules are not supported)"),
        (cfg.get("bias", "none") != "none", f"bias={cfg.get('bias')!r} (only 'none' is supported)"),
        ("r" not in cfg or "lora_alpha" not in cfg, "r and lora_alpha are required"),
    ]
    for bad, msg in refusals:
        if bad:
            raise DataError(f"{path}: {msg}")
    return cfg


def merge_adapter(model: nn.Module, adapter_dir: str | Path) -> list[str]:
    """Fold a PEFT LoRA adapter into `model`'s Linear weights in place; returns the merged module paths."""
    from safetensors.torch import load_file

    cfg = read_lora_config(adapter_dir)
    weights_path = Path(adapter_dir) / "adapter_model.safetensors"
    if not weights_path.exists():
        raise DataError(f"{weights_path}: not found")
    r, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    saved = load_file(str(weights_path))
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in saved.items():
        if not key.startswith(PEFT_PREFIX) or ".lora_" not in key:
            raise DataError(f"{weights_path}: unexpected tensor {key!r} (expected {PEFT_PREFIX}<module>.lora_A/B.weight)")
        module_path, _, tail = key[len(PEFT_PREFIX):].rpartition(".lora_")
        part = tail.split(".")[0]
        pairs.setdefault(module_path, {})[part] = tensor
    modules = dict(model.named_modules())
    merged = []
    with torch.no_grad():
        for module_path, ab in sorted(pairs.items()):
            if set(ab) != {"A", "B"}:
                raise DataError(f"{weights_path}: {module_path} has only lora_{''.join(ab)} (need both A and B)")
            layer = modules.get(module_path)
            if not isinstance(layer, nn.Linear):
                raise DataError(f"{weights_path}: adapter module {module_path!r} is not a Linear layer of this model")
            delta = ab["B"].to(torch.float32) @ ab["A"].to(torch.float32)
            if cfg.get("fan_in_fan_out"):
                delta = delta.T
            if delta.shape != layer.weight.shape:
                raise DataError(f"{weights_path}: {module_path} update has shape {tuple(delta.shape)}, "
                                f"model weight is {tuple(layer.weight.shape)}")
            layer.weight.add_((scale * delta).to(layer.weight.dtype))
            merged.append(module_path)
    if not merged:
        raise DataError(f"{weights_path}: no LoRA weights found")
    return merged

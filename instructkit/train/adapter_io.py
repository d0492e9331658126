"""Adapters on disk in PEFT's format, and merging them into a plain transformers checkpoint.

The format is PEFT's own, so what we save works wherever PEFT adapters work (PEFT, vLLM, the
Hub) and what PEFT saves loads here:
- `adapter_config.json`: peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, target_modules, ...
- `adapter_model.safetensors`: keys `base_model.model.<module path>.lora_A.weight` / `.lora_B.weight`.
Only the features we implement are accepted on load; anything else (DoRA, per-layer ranks,
extra trained modules) is refused with a message rather than silently dropped.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from instructkit.errors import DataError
from instructkit.train.config import LoraSettings
from instructkit.train.lora import LoraLayer, lora_layers
from instructkit.train.targets import inject_lora

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


def add_lora(model: nn.Module, lora: LoraSettings) -> list[str]:
    """Freeze `model` and wrap its target layers; remembers what to write in adapter_config.json."""
    names = inject_lora(model, lora.target_modules, r=lora.r, alpha=lora.alpha, dropout=lora.dropout,
                        use_rslora=lora.use_rslora)
    model.instructkit_lora = {"lora": lora, "target_modules": names}
    return names


def adapter_config(model: nn.Module, base_model_name_or_path: str | None = None) -> dict[str, Any]:
    """The adapter_config.json PEFT expects (fields we do not use get PEFT's defaults)."""
    info = getattr(model, "instructkit_lora", None)
    if info is None:
        raise ValueError("this model has no LoRA layers added by instructkit (call add_lora first)")
    lora: LoraSettings = info["lora"]
    fan_in_fan_out = any(layer.fan_in_fan_out for layer in lora_layers(model).values())
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name_or_path or getattr(model, "name_or_path", None),
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": info["target_modules"],
        "use_rslora": lora.use_rslora,
        "fan_in_fan_out": fan_in_fan_out,
        "bias": "none",
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "use_dora": False,
        "revision": None,
    }


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """LoRA weights under PEFT's key names (contiguous CPU copies, safe to save)."""
    out = {}
    for path, layer in lora_layers(model).items():
        out[f"{PEFT_PREFIX}{path}.lora_A.weight"] = layer.lora_A.weight.detach().cpu().contiguous()
        out[f"{PEFT_PREFIX}{path}.lora_B.weight"] = layer.lora_B.weight.detach().cpu().contiguous()
    return out


def save_adapter(model: nn.Module, out_dir: str | Path, base_model_name_or_path: str | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = adapter_config(model, base_model_name_or_path)
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    save_file(adapter_state_dict(model), str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    return out


def read_adapter_config(adapter_dir: str | Path) -> tuple[LoraSettings, dict[str, Any]]:
    """Parse adapter_config.json into LoraSettings, refusing features we would get wrong."""
    path = Path(adapter_dir) / CONFIG_NAME
    if not path.exists():
        raise DataError(f"{path}: not found (is {adapter_dir} a PEFT LoRA adapter directory?)")
    cfg = json.loads(path.read_text())
    problems = [
        (cfg.get("peft_type") != "LORA", f"peft_type is {cfg.get('peft_type')!r}, only LORA is supported"),
        (bool(cfg.get("use_dora")), "use_dora is true (DoRA is not supported)"),
        (bool(cfg.get("rank_pattern")) or bool(cfg.get("alpha_pattern")),
         "per-layer rank/alpha patterns are not supported"),
        (bool(cfg.get("modules_to_save")), "modules_to_save is set (fully trained extra modules are not supported)"),
        (cfg.get("bias", "none") != "none", f"bias={cfg.get('bias')!r} (only 'none' is supported)"),
        (cfg.get("layers_to_transform") is not None, "layers_to_transform is set (not supported)"),
    ]
    for bad, msg in problems:
        if bad:
            raise DataError(f"{path}: {msg}")
    targets = cfg.get("target_modules")
    if isinstance(targets, (list, tuple, set)):
        targets = sorted(targets)
    lora = LoraSettings(r=int(cfg["r"]), alpha=float(cfg["lora_alpha"]), dropout=float(cfg.get("lora_dropout") or 0.0),
                        target_modules=targets, use_rslora=bool(cfg.get("use_rslora", False)))
    return lora, cfg


def load_adapter(model: nn.Module, adapter_dir: str | Path, trainable: bool = False) -> nn.Module:
    """Add the adapter's LoRA layers to `model` and load its weights (exact key match required)."""
    lora, _ = read_adapter_config(adapter_dir)
    add_lora(model, lora)
    load_adapter_weights(model, adapter_dir)
    for layer in lora_layers(model).values():
        layer.lora_A.weight.requires_grad_(trainable)
        layer.lora_B.weight.requires_grad_(trainable)
    return model


def load_adapter_weights(model: nn.Module, adapter_dir: str | Path) -> None:
    path = Path(adapter_dir) / WEIGHTS_NAME
    if not path.exists():
        raise DataError(f"{path}: not found")
    saved = load_file(str(path))
    expected = adapter_state_dict(model)
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise DataError(f"{path}: adapter does not fit this model ({len(missing)} missing, "
                        f"{len(unexpected)} unexpected keys; first {what})")
    layers = lora_layers(model)
    with torch.no_grad():
        for key, tensor in saved.items():
            module_path, _, tail = key[len(PEFT_PREFIX):].rpartition(".lora_")
            target = getattr(layers[module_path], "lora_" + tail.split(".")[0]).weight
            if target.shape != tensor.shape:
                raise DataError(f"{path}: {key} has shape {tuple(tensor.shape)}, model expects {tuple(target.shape)}")
            target.copy_(tensor.to(target.dtype))


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into its base weight and put the plain layer back (in place)."""
    for path, layer in lora_layers(model).items():
        parent_name, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.merged_base_layer())
    if hasattr(model, "instructkit_lora"):
        del model.instructkit_lora
    return model


def save_merged(model: nn.Module, out_dir: str | Path, tokenizer: Any = None) -> Path:
    """Merge (in place) and write a plain transformers checkpoint that needs no adapter code."""
    if isinstance(next(iter(lora_layers(model).values()), None), LoraLayer):
        merge_lora(model)
    out = Path(out_dir)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out

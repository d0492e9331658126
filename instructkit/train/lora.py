"""LoRA layers: a frozen base projection plus a trainable low-rank update, laid out like PEFT.

The module tree mirrors PEFT's on purpose (`<target>.base_layer`, `<target>.lora_A`,
`<target>.lora_B`): then our state-dict keys map to PEFT's by a fixed prefix, and an adapter
trained here loads in PEFT, vLLM or the Hub without a conversion table.

The update is `y = base(x) + lora_B(lora_A(dropout(x))) * scaling` with
`scaling = alpha / r` (or `alpha / sqrt(r)` with rsLoRA, which keeps the update's size stable
as r grows). A is initialised like `nn.Linear` (kaiming-uniform, a=sqrt(5)) and B at zero, as PEFT
does by default, so a fresh adapter leaves the model's outputs unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D


def is_linear_like(module: nn.Module) -> bool:
    """nn.Linear and GPT-2's Conv1D are the layers LoRA can wrap here."""
    return isinstance(module, (nn.Linear, Conv1D))


def in_out_features(module: nn.Module) -> tuple[int, int]:
    """(in, out) of a projection; Conv1D stores its weight transposed as (in, out)."""
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.weight.shape[1]
    return module.in_features, module.out_features


class LoraLayer(nn.Module):
    """Wraps one frozen projection with a low-rank trainable update."""

    def __init__(self, base_layer: nn.Module, r: int, alpha: float, dropout: float = 0.0,
                 use_rslora: bool = False) -> None:
        super().__init__()
        if r <= 0:
            raise ValueError(f"LoRA rank r must be > 0, got {r}")
        self.base_layer = base_layer
        self.fan_in_fan_out = isinstance(base_layer, Conv1D)
        in_f, out_f = in_out_features(base_layer)
        self.in_features, self.out_features = in_f, out_f
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        weight = base_layer.weight
        self.lora_A = nn.Linear(in_f, r, bias=False, device=weight.device, dtype=weight.dtype)
        self.lora_B = nn.Linear(r, out_f, bias=False, device=weight.device, dtype=weight.dtype)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_lora_parameters()
        for p in self.base_layer.parameters():
            p.requires_grad_(False)

    def reset_lora_parameters(self) -> None:
        """PEFT's default init: A as nn.Linear does it, B zero (a new adapter is a no-op)."""
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def delta_weight(self) -> torch.Tensor:
        """The update in the base layer's own weight layout (transposed for Conv1D)."""
        delta = (self.lora_B.weight @ self.lora_A.weight) * self.scaling  # (out, in)
        return delta.T if self.fan_in_fan_out else delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        a = self.lora_A.weight
        update = self.lora_B(self.lora_A(self.lora_dropout(x.to(a.dtype))))
        return out + (update * self.scaling).to(out.dtype)

    @torch.no_grad()
    def merged_base_layer(self) -> nn.Module:
        """The base layer with the update folded into its weight (this layer is then spent)."""
        w = self.base_layer.weight
        w.add_(self.delta_weight().to(w.dtype))
        self.merged = True
        return self.base_layer

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


def lora_layers(model: nn.Module) -> dict[str, LoraLayer]:
    """Every LoRA layer of a model by its module path."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]

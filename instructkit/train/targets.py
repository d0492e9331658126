"""Which modules get LoRA, by PEFT's rules, and the injection that wraps them.

PEFT's matching rules (kept identical so a config means the same thing in both tools):
- a string is a regular expression that must match the WHOLE module path (`re.fullmatch`);
- a list matches a module whose path equals an entry or ends with `.entry`;
- `all-linear` means every nn.Linear / Conv1D except the output head (`get_output_embeddings()`).
Everything that is not a LoRA A/B matrix is frozen.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

from instructkit.errors import ConfigError
from instructkit.train.lora import LoraLayer, is_linear_like

ALL_LINEAR = "all-linear"


def _output_head_name(model: nn.Module) -> str | None:
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    if head is None:
        return None
    return next((name for name, m in model.named_modules() if m is head), None)


def matches(target_modules: str | Iterable[str], name: str) -> bool:
    """PEFT's rule: a str is a full-match regex, a list matches by exact name or `.suffix`."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == t or name.endswith("." + t) for t in target_modules)


def resolve_targets(model: nn.Module, target_modules: str | list[str]) -> list[str]:
    """Full module paths that will be wrapped; a clear error when the spec matches nothing usable."""
    linear = [n for n, m in model.named_modules() if n and is_linear_like(m)]
    if isinstance(target_modules, str) and target_modules.lower() == ALL_LINEAR:
        head = _output_head_name(model)
        chosen = [n for n in linear if n != head]
    else:
        named = dict(model.named_modules())
        chosen = [n for n in named if n and matches(target_modules, n)]
        bad = [n for n in chosen if not is_linear_like(named[n])]
        if bad:
            raise ConfigError(f"lora.target_modules: {bad[0]!r} is a {type(named[bad[0]]).__name__}; "
                              f"only nn.Linear and Conv1D layers can take LoRA here")
    if not chosen:
        suffixes = sorted({n.rsplit(".", 1)[-1] for n in linear})
        raise ConfigError(f"lora.target_modules: {target_modules!r} matches no linear layer; "
                          f"linear layers in this model: {', '.join(suffixes)} (or use 'all-linear')")
    return chosen


def compact_names(model: nn.Module, chosen: list[str]) -> list[str]:
    """Short suffix names (`q_proj`) when they select exactly `chosen`, else full paths.

    PEFT writes `all-linear` out as suffix names; we do the same when that is lossless, so the
    saved config reads naturally and still reproduces the same set of layers.
    """
    suffixes = sorted({n.rsplit(".", 1)[-1] for n in chosen})
    linear = [n for n, m in model.named_modules() if n and is_linear_like(m)]
    if sorted(n for n in linear if matches(suffixes, n)) == sorted(chosen):
        return suffixes
    return sorted(chosen)


def inject_lora(model: nn.Module, target_modules: str | list[str], r: int, alpha: float,
                dropout: float = 0.0, use_rslora: bool = False) -> list[str]:
    """Freeze the model, wrap the target layers in place; return the names to save in the config."""
    chosen = resolve_targets(model, target_modules)
    saved_names = compact_names(model, chosen)
    for p in model.parameters():
        p.requires_grad_(False)
    for path in chosen:
        parent_name, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        base = getattr(parent, child)
        setattr(parent, child, LoraLayer(base, r=r, alpha=alpha, dropout=dropout, use_rslora=use_rslora))
    return saved_names

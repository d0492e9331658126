"""LoRA fine-tuning with torch + transformers only; adapters in PEFT's format.

    from instructkit.train import load_train_config, train
    result = train(load_train_config("pipelines/train_quickstart.yaml"))

Names are imported lazily so that `import instructkit.train` does not pull in torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "train": "instructkit.train.loop",
    "TrainResult": "instructkit.train.loop",
    "TrainConfig": "instructkit.train.config",
    "LoraSettings": "instructkit.train.config",
    "TrainSettings": "instructkit.train.config",
    "load_train_config": "instructkit.train.config",
    "add_lora": "instructkit.train.adapter_io",
    "save_adapter": "instructkit.train.adapter_io",
    "load_adapter": "instructkit.train.adapter_io",
    "merge_lora": "instructkit.train.adapter_io",
    "save_merged": "instructkit.train.adapter_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'instructkit.train' has no attribute {name!r}")

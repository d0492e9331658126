"""instructkit: build clean, deduplicated, decontaminated, quality-gated SFT datasets, then
train a LoRA adapter on them and benchmark base vs tuned.

    from instructkit import Pipeline
    Pipeline.from_yaml("pipelines/quickstart.yaml").run()

`Pipeline` is imported lazily, so `import instructkit.train` (or `.eval`) does not load every
operator module.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Pipeline", "RunResult", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Pipeline", "RunResult"):
        from instructkit import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'instructkit' has no attribute {name!r}")

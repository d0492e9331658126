"""instructkit: build clean, deduplicated, decontaminated, quality-gated SFT datasets, then
train a LoRA adapter on them and benchmark base vs tuned.

    from instructkit import Pipeline
    Pipeline.from_yaml("pipelines/quickstart.yaml").run()
"""
from __future__ import annotations

__version__ = "0.1.0"

from instructkit.pipeline import Pipeline, RunResult  # noqa: E402

__all__ = ["Pipeline", "RunResult", "__version__"]

"""Shared fixtures for the evaluator tests: the vendored stories260K model and eval data samples."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "examples" / "models" / "stories260K"
FIX = REPO / "tests" / "fixtures" / "eval"


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The 260K-parameter model is all overhead: one thread avoids oversubscribing a busy 2-core CI box."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_lm():
    import torch

    from instructkit.eval.model import load_model

    torch.manual_seed(0)
    return load_model(str(MODEL_DIR))


@pytest.fixture(scope="session")
def eval_data_dir() -> Path:
    return FIX

"""Shared test helpers: canonical tables built from real-looking conversations."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("INSTRUCTKIT_QUIET", "1")

REPO = Path(__file__).resolve().parent.parent


def make_table(convs: list[list[tuple[str, str]]], ids: list[str] | None = None, source: str = "test") -> pa.Table:
    """Canonical table from [(role, content), ...] conversations."""
    from instructkit.schema import record_schema

    rows = [
        {"id": (ids[i] if ids else f"row{i}"), "messages": [{"role": r, "content": c} for r, c in conv],
         "source": source, "meta": "{}"}
        for i, conv in enumerate(convs)
    ]
    return pa.Table.from_pylist(rows, schema=record_schema())


@pytest.fixture
def repo_root() -> Path:
    return REPO

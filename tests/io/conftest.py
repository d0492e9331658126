"""Helpers for the ingestion tests: read an input fully, split good rows from rejects."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "io"


def read_all(path, batch_size: int = 8192, **kw) -> pa.Table:
    """Every batch of an input, checked against the provenance schema, as one table."""
    from instructkit.io import InputSpec, read_input
    from instructkit.schema import provenance_schema

    batches = list(read_input(InputSpec(str(path), **kw), batch_size=batch_size))
    for b in batches:
        assert b.schema == provenance_schema()
    return pa.concat_tables(batches) if batches else provenance_schema().empty_table()


def good(table: pa.Table) -> list[dict]:
    return [r for r in table.to_pylist() if r["_error"] is None]


def bad(table: pa.Table) -> list[dict]:
    return [r for r in table.to_pylist() if r["_error"] is not None]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES

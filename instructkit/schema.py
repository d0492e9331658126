"""The canonical record as an Arrow schema, generated from `schemas/record.schema.json`.

One schema for every source format keeps every operator simple: they all read `messages`
(a list of {role, content}) and never care whether the row came from Alpaca or ShareGPT.
`meta` is a JSON string so that records from different sources share one Arrow type.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pyarrow as pa

ROLES = ("system", "user", "assistant", "tool")

#: Provenance columns carried through the pipeline for rejects; never written to the output.
PROVENANCE = ("_file", "_line", "_error")

MESSAGE_TYPE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)

_ARROW_TYPES = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


def _schema_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schemas" / "record.schema.json", here / "_schemas" / "record.schema.json"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("schemas/record.schema.json not found next to the package")


def _arrow_type(prop: dict) -> pa.DataType:
    if prop.get("type") == "array":
        item = prop["items"]
        return pa.list_(pa.struct([pa.field(k, _arrow_type(v)) for k, v in item["properties"].items()]))
    return _ARROW_TYPES[prop["type"]]


@lru_cache(maxsize=1)
def record_schema() -> pa.Schema:
    """Arrow schema of a canonical record, derived from the JSON Schema (single source of truth)."""
    spec = json.loads(_schema_path().read_text())
    required = set(spec.get("required", []))
    return pa.schema(
        [pa.field(name, _arrow_type(prop), nullable=name not in required) for name, prop in spec["properties"].items()]
    )


def provenance_schema() -> pa.Schema:
    """Canonical schema plus the provenance columns that readers attach to every batch."""
    return record_schema().append(pa.field("_file", pa.string())).append(pa.field("_line", pa.int64())).append(
        pa.field("_error", pa.string())
    )

"""Format auto-detection: look at the fields of the first records and say why.

The rules are ordered from the most specific shape to the most generic, so that e.g. an OASST
tree (which has a `prompt` field) is not taken for prompt/completion.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from instructkit.errors import DataError
from instructkit.io import files

SNIFF_RECORDS = 50


@dataclass
class Detection:
    format: str
    file_type: str
    why: str
    fields: list[str]


#: (format, fields that must all be present, explanation)
RULES: list[tuple[str, tuple[str, ...], str]] = [
    ("oasst", ("prompt", "message_tree_id"), "records are message trees (prompt with nested replies)"),
    ("canonical", ("messages", "source", "meta"), "records already have id/messages/source/meta"),
    ("openai", ("messages",), "records have a `messages` list of {role, content}"),
    ("sharegpt", ("conversations",), "records have a `conversations` list of {from, value}"),
    ("dolly", ("instruction", "response"), "records have instruction/response (context, category)"),
    ("alpaca", ("instruction", "output"), "records have instruction/input/output"),
    ("prompt_completion", ("prompt", "completion"), "records have prompt/completion"),
]

#: what each format needs, to tell a wrong `format:` override from a few bad rows
REQUIRED = {fmt: req for fmt, req, _ in RULES}
REQUIRED["oasst"] = ("prompt",)


def sample_records(p: Path, ftype: str, n: int = SNIFF_RECORDS) -> list[Any]:
    """The first few records of a file as Python objects (bad lines skipped)."""
    if ftype == "jsonl":
        out = []
        for _, chunk in files.iter_chunks(p, 1 << 62, chunk_bytes=1 << 20):
            if isinstance(chunk, files.Oversized):
                continue
            starts, ends, has = files.split_lines(chunk)
            for k in np.flatnonzero(has):
                rec, err = files.parse_line(chunk[starts[k]:ends[k]])
                if err is None:
                    out.append(rec)
                if len(out) >= n:
                    return out
            break  # the first chunk (>= 1 MiB of whole lines) is enough to sniff
        return out
    if ftype == "json":
        return files.read_json_array(p, 1 << 62)[:n]
    table = first_table(p, ftype)
    return table.slice(0, n).to_pylist() if table is not None else []


def first_table(p: Path, ftype: str) -> pa.Table | None:
    gen = {"csv": lambda: files.read_csv(p, ",", 64), "tsv": lambda: files.read_csv(p, "\t", 64),
           "parquet": lambda: files.read_parquet(p, 64), "arrow": lambda: files.read_arrow(p, 64)}.get(ftype)
    if gen is None:
        return None
    for t in gen():
        return t
    return None


def fields_of(records: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        if isinstance(r, dict):
            for k in r:
                seen.setdefault(k, None)
    return list(seen)


def detect_fields(fields: list[str], columns: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(format, why) from a list of field names; `columns` (format field -> source field) applies."""
    inverse = {v: k for k, v in (columns or {}).items()}
    have = {inverse.get(f, f) for f in fields}
    for fmt, need, why in RULES:
        if all(k in have for k in need):
            return fmt, why
    return None


def detect(path: str | Path, file_type: str | None = None, columns: dict[str, str] | None = None) -> Detection:
    """Detect the record format of a file (the first file of a glob/directory)."""
    p = files.expand(str(path))[0]
    ftype = files.file_type(p, file_type)
    if ftype == "hf":
        from instructkit.io.formats import hf

        flds = hf.column_names(str(p))
    else:
        if files.file_is_empty(p):
            raise DataError(f"{p}: the file is empty")
        flds = fields_of(sample_records(p, ftype))
    found = detect_fields(flds, columns)
    if found is None:
        raise DataError(f"{p}: cannot detect the record format from fields {', '.join(flds[:10]) or '(none)'}; "
                        f"set format: alpaca|sharegpt|openai|prompt_completion|dolly|oasst|canonical and, if "
                        f"needed, columns: {{output: your_field}}")
    fmt, why = found
    return Detection(fmt, ftype, f"{why} (fields: {', '.join(flds[:10])})", flds)


def detect_format(path: str | Path, file_type: str | None = None) -> str:
    """The record format name of a file; `detect()` also says why."""
    return detect(path, file_type).format

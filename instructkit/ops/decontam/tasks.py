"""Benchmark task files -> (benchmark, item id, text) items to index for decontamination.

Users point at the files they evaluate on; the common layouts are recognized by field name, so
no per-benchmark code is needed:
  IFEval {key, prompt} · GSM8K {question, answer} · MT-Bench {question_id, turns[]} ·
  AlpacaEval [{instruction, output}] · BBH {examples[{input, target}]} ·
  ARC-style multiple choice {query, choices[], gold} · anything else with string fields.
`builtin:ifeval_sample` / `builtin:gsm8k_sample` are small slices shipped for tests and demos.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from instructkit.errors import ConfigError

#: Fields whose text is indexed, in this order (prompts and answers both leak).
TEXT_FIELDS = ("prompt", "question", "instruction", "input", "query", "context", "turns", "choices",
               "output", "answer", "target", "response", "continuation", "context_options", "chain_of_thought")
ID_FIELDS = ("key", "question_id", "id", "idx", "index", "task_id")
BUILTIN = {"ifeval_sample": "ifeval_sample.jsonl", "gsm8k_sample": "gsm8k_sample.jsonl"}


@dataclass
class Item:
    benchmark: str
    item_id: str
    text: str


def _open_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text(encoding="utf-8")


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(1-based line or position, record) from JSONL or a JSON list / {examples: [...]} file."""
    text = _open_text(path)
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped.strip()):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"decontaminate: {path}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
        if isinstance(data, dict):
            data = data.get("examples", data.get("data", [data]))
        if not isinstance(data, list):
            raise ConfigError(f"decontaminate: {path}: expected a JSON list of items or {{examples: [...]}}")
        yield from enumerate(data, 1)
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"decontaminate: {path}:{lineno}: invalid JSON ({exc.msg})") from None


def _flatten_text(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _flatten_text(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten_text(v)]
    return []


def item_text(record: dict[str, Any], fields: list[str] | None = None) -> list[str]:
    """The texts of one benchmark record (each is indexed separately: n-grams never span fields)."""
    keys = fields or [k for k in TEXT_FIELDS if k in record] or [k for k, v in record.items() if isinstance(v, str)]
    return [t for k in keys for t in _flatten_text(record.get(k))]


def resolve(spec: str) -> tuple[str, Path]:
    """(benchmark name, file path) from a path or `builtin:<name>`."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN:
            raise ConfigError(f"decontaminate: unknown built-in benchmark {name!r} (known: {', '.join(BUILTIN)})")
        return name, Path(str(resources.files("instructkit.ops.decontam") / "samples" / BUILTIN[name]))
    p = Path(spec)
    if not p.exists():
        raise ConfigError(f"decontaminate: benchmark file {spec} does not exist")
    name = p.name.split(".")[0]
    if name in ("test", "train", "question", "input_data", "validation") and p.parent.name:
        name = p.parent.name  # gsm8k/test.jsonl -> gsm8k
    return name, p


def load_items(specs: list[str | dict[str, Any]]) -> list[Item]:
    """Items of every benchmark file. A spec is a path / builtin name, or
    `{path, name?, fields?, id_field?}` to override the detected layout."""
    items: list[Item] = []
    for spec in specs:
        if isinstance(spec, dict):
            if "path" not in spec:
                raise ConfigError(f"decontaminate: benchmark entry {spec!r} needs a 'path'")
            name, path = resolve(str(spec["path"]))
            name = spec.get("name", name)
            fields = spec.get("fields")
            id_field = spec.get("id_field")
        else:
            name, path = resolve(str(spec))
            fields = id_field = None
        before = len(items)
        for pos, rec in _records(path):
            if isinstance(rec, str):
                rec = {"text": rec}
            if not isinstance(rec, dict):
                continue
            key = id_field or next((k for k in ID_FIELDS if k in rec), None)
            item_id = str(rec[key]) if key and key in rec else str(pos)
            for text in item_text(rec, fields):
                items.append(Item(name, item_id, text))
        if len(items) == before:
            raise ConfigError(f"decontaminate: {path} has no text to index (fields tried: {', '.join(fields or TEXT_FIELDS)})")
    return items

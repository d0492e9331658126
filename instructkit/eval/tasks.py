"""Task definitions in YAML: which data file, how a row becomes a prompt, how it is scored.

A task is data, not code, so adding a benchmark in an existing format is a new YAML file. Built-in
tasks live in `instructkit/eval/tasks/*.yaml`; their `data` paths are relative to the data
directory the user points at (`--data-dir`), because the benchmark files are not shipped with the
package. A task file given by path may use a path relative to the YAML file instead.
"""
from __future__ import annotations

import glob
import gzip
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from instructkit.errors import ConfigError, DataError

BUILTIN_DIR = Path(__file__).resolve().parent / "tasks"
OUTPUT_TYPES = ("multiple_choice", "multiple_choice_partial", "generate_until", "ifeval", "heldout_loss")


@dataclass
class TaskSpec:
    name: str
    output_type: str
    data: str = ""
    records_key: str | None = None
    description: str = ""
    # multiple choice
    context: str = "{{ query }}"
    choices: str = "choices"
    context_options: str = "context_options"
    continuation: str = "{{ continuation }}"
    gold: str = "gold"
    target_delimiter: str = " "
    # generation
    prompt: str = ""
    target: str = ""
    chat: bool = False
    until: list[str] = field(default_factory=list)
    max_new_tokens: int = 256
    extract: str = "exact"
    metrics: list[str] = field(default_factory=list)
    source: str = ""  # the YAML file this came from (for messages)

    def data_files(self, data_dir: str | Path | None) -> list[Path]:
        """The files this task reads, resolved against `data_dir` (or the YAML's own folder)."""
        if not self.data:
            raise ConfigError(f"{self.source}: task {self.name!r} has no 'data' path")
        roots = [Path(data_dir)] if data_dir else []
        if self.source and not self.source.startswith(str(BUILTIN_DIR)):
            roots.append(Path(self.source).parent)
        candidates = [Path(self.data)] if Path(self.data).is_absolute() else [r / self.data for r in roots]
        for cand in candidates:
            hits = sorted(Path(p) for p in glob.glob(str(cand)))
            if hits:
                return hits
        where = ", ".join(str(c) for c in candidates) or self.data
        raise DataError(f"task {self.name!r}: data file not found ({where}); pass --data-dir pointing at a "
                        f"folder that holds {self.data}")


def _parse(raw: Any, source: str) -> TaskSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a task file must be a YAML mapping")
    known = {f.name for f in fields(TaskSpec)} - {"source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(known))})")
    for key in ("name", "output_type"):
        if key not in raw:
            raise ConfigError(f"{source}: missing required key {key!r}")
    if raw["output_type"] not in OUTPUT_TYPES:
        raise ConfigError(f"{source}: output_type {raw['output_type']!r} is not one of {', '.join(OUTPUT_TYPES)}")
    if isinstance(raw.get("until"), str):
        raw["until"] = [raw["until"]]
    return TaskSpec(**raw, source=source)


def builtin_tasks() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}


def load_task(name_or_path: str) -> TaskSpec:
    """A built-in task by name, or a task YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise ConfigError(f"task file {path} not found")
    else:
        tasks = builtin_tasks()
        if name_or_path not in tasks:
            raise ConfigError(f"unknown task {name_or_path!r} (built-in: {', '.join(tasks)}; or pass a .yaml path)")
        path = tasks[name_or_path]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    return _parse(raw, str(path))


def read_rows(path: str | Path, records_key: str | None = None) -> list[dict[str, Any]]:
    """Rows of a .jsonl / .jsonl.gz / .json file (a list, or a mapping holding the list under records_key)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    name = path.name.removesuffix(".gz")
    with opener(path, "rt", encoding="utf-8") as fh:
        if name.endswith(".jsonl"):
            rows = []
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
            return rows
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if records_key:
        if not isinstance(doc, dict) or records_key not in doc:
            raise DataError(f"{path}: expected a JSON object with key {records_key!r}")
        doc = doc[records_key]
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a JSON list of records (or set records_key)")
    return doc


class RowRenderer:
    """Jinja templates over a row, compiled once; a missing field names the task, file and row."""

    def __init__(self, spec: TaskSpec):
        import jinja2

        self.spec = spec
        self.env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        self._cache: dict[str, Any] = {}

    def __call__(self, template: str, row: dict[str, Any], where: str) -> str:
        import jinja2

        tpl = self._cache.get(template)
        if tpl is None:
            try:
                tpl = self._cache[template] = self.env.from_string(template)
            except jinja2.TemplateSyntaxError as exc:
                raise ConfigError(f"{self.spec.source}: bad Jinja template {template!r} ({exc.message})") from None
        try:
            return tpl.render(**row)
        except jinja2.UndefinedError as exc:
            raise DataError(f"{where}: task {self.spec.name!r} template needs a field the row lacks ({exc.message})") from None

    def field(self, row: dict[str, Any], key: str, where: str) -> Any:
        if key not in row:
            raise DataError(f"{where}: task {self.spec.name!r} expects field {key!r} (row has {sorted(row)})")
        return row[key]

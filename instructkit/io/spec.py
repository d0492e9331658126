"""One pipeline input as declared in YAML (`inputs: [...]`), validated before any data is read.

Validation is strict on purpose: a misspelled key (`colums:`) or an unknown format would
otherwise be silently ignored and the user would only notice when the output looks wrong.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from instructkit.errors import ConfigError

#: Record formats a reader understands; "auto" sniffs the first records (see `detect.py`).
FORMATS = ("auto", "alpaca", "sharegpt", "openai", "prompt_completion", "dolly", "oasst", "canonical", "hf")

#: Container types; None means "from the file extension".
FILE_TYPES = ("json", "jsonl", "csv", "tsv", "parquet", "arrow", "hf")

#: Options every format accepts.
COMMON_OPTIONS = {
    "id_field": "name of the source field holding the record's own id (default: id)",
    "id_prefix": "string prepended to every id (keeps ids of different sources apart)",
    "max_record_bytes": "records larger than this are rejected as oversized_record (default 16 MiB)",
    "system": "system prompt added as the first turn when a record has none",
}

#: Format-specific options (validated so that typos fail loudly).
FORMAT_OPTIONS: dict[str, dict[str, str]] = {
    "auto": {},
    "alpaca": {"join": "separator between instruction and input (default: blank line)"},
    "dolly": {"join": "separator between instruction and context (default: blank line)"},
    "sharegpt": {"role_aliases": "mapping extra source role -> system/user/assistant/tool"},
    "openai": {"role_aliases": "mapping extra source role -> system/user/assistant/tool"},
    "prompt_completion": {},
    "oasst": {"paths": "'all' (every root-to-leaf path ending on an assistant turn, default) or 'best' "
                       "(one path per tree following the best-ranked reply)",
              "langs": "list of language codes to keep (default: all)"},
    "canonical": {"role_aliases": "mapping extra source role -> system/user/assistant/tool"},
    "hf": {"split": "split of a DatasetDict / Hub dataset (default: train)",
           "record_format": "record format of the dataset's columns (default: auto)",
           "role_aliases": "mapping extra source role -> system/user/assistant/tool",
           "join": "separator between instruction and input"},
}

DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024


@dataclass
class InputSpec:
    """Where to read from and how to interpret it."""

    path: str
    format: str = "auto"
    name: str | None = None
    file_type: str | None = None
    #: field mapping, format/canonical field -> source field (e.g. {output: response})
    columns: dict[str, str] = field(default_factory=dict)
    on_error: str = "reject"
    weight: float | None = None
    cap: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate("input")

    # ------------------------------------------------------------------ validation
    def validate(self, where: str) -> None:
        def bad(key: str, expected: str, got: Any) -> ConfigError:
            return ConfigError(f"{where}: '{key}': expected {expected}, got {got!r}")

        if not isinstance(self.path, str) or not self.path.strip():
            raise bad("path", "a non-empty file path, directory, glob or Hub dataset name", self.path)
        if self.format not in FORMATS:
            raise bad("format", f"one of {', '.join(FORMATS)}", self.format)
        if self.file_type is not None and self.file_type not in FILE_TYPES:
            raise bad("file_type", f"one of {', '.join(FILE_TYPES)}", self.file_type)
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise bad("name", "a non-empty string", self.name)
        if not isinstance(self.columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.columns.items()
        ):
            raise bad("columns", "a mapping of field name -> source field name (strings)", self.columns)
        if self.on_error not in ("reject", "fail"):
            raise bad("on_error", "'reject' or 'fail'", self.on_error)
        if self.weight is not None and (
            isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not 0 < self.weight <= 1
        ):
            raise bad("weight", "a number in (0, 1]", self.weight)
        if self.cap is not None and (isinstance(self.cap, bool) or not isinstance(self.cap, int) or self.cap < 0):
            raise bad("cap", "a non-negative integer", self.cap)
        if not isinstance(self.options, dict):
            raise bad("options", "a mapping", self.options)
        allowed = {**COMMON_OPTIONS, **FORMAT_OPTIONS.get(self.format, {})}
        if self.format == "auto":  # the format is not known yet: accept any format's options
            for opts in FORMAT_OPTIONS.values():
                allowed.update(opts)
        for key in self.options:
            if key not in allowed:
                raise ConfigError(
                    f"{where}: options: unknown key '{key}' for format '{self.format}' "
                    f"(expected one of: {', '.join(sorted(allowed))})"
                )
        o = self.options
        if "id_field" in o and not isinstance(o["id_field"], str):
            raise bad("options.id_field", "a field name (string)", o["id_field"])
        if "id_prefix" in o and not isinstance(o["id_prefix"], str):
            raise bad("options.id_prefix", "a string", o["id_prefix"])
        if "max_record_bytes" in o and (not isinstance(o["max_record_bytes"], int) or o["max_record_bytes"] <= 0):
            raise bad("options.max_record_bytes", "a positive integer (bytes)", o["max_record_bytes"])
        if "system" in o and not isinstance(o["system"], str):
            raise bad("options.system", "a string", o["system"])
        if "join" in o and not isinstance(o["join"], str):
            raise bad("options.join", "a string", o["join"])
        if "role_aliases" in o:
            from instructkit.schema import ROLES

            ra = o["role_aliases"]
            if not isinstance(ra, dict) or not all(isinstance(k, str) and v in ROLES for k, v in ra.items()):
                raise bad("options.role_aliases", f"a mapping source role -> one of {', '.join(ROLES)}", ra)
        if "paths" in o and o["paths"] not in ("all", "best"):
            raise bad("options.paths", "'all' or 'best'", o["paths"])
        if "langs" in o and (not isinstance(o["langs"], list) or not all(isinstance(x, str) for x in o["langs"])):
            raise bad("options.langs", "a list of language codes", o["langs"])
        if "split" in o and not isinstance(o["split"], str):
            raise bad("options.split", "a split name (string)", o["split"])
        if "record_format" in o and o["record_format"] not in FORMATS[:-1]:
            raise bad("options.record_format", f"one of {', '.join(FORMATS[:-1])}", o["record_format"])

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Any, where: str = "input") -> "InputSpec":
        """Build from a YAML mapping; a plain string is shorthand for `{path: ...}`."""
        if isinstance(d, str):
            d = {"path": d}
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a mapping with at least 'path', got {type(d).__name__}")
        known = [f.name for f in fields(cls)]
        for key in d:
            if key not in known:
                raise ConfigError(f"{where}: unknown key '{key}' (expected one of: {', '.join(known)})")
        if "path" not in d:
            raise ConfigError(f"{where}: missing required key 'path' (a file, directory, glob or Hub dataset name)")
        spec = cls.__new__(cls)
        for f in fields(cls):
            if f.name in d:
                value = d[f.name]
            elif f.default_factory is not MISSING:
                value = f.default_factory()  # type: ignore[misc]
            else:
                value = f.default
            setattr(spec, f.name, value)
        if spec.options is None:
            spec.options = {}
        if spec.columns is None:
            spec.columns = {}
        spec.validate(where)
        return spec

    # ------------------------------------------------------------------ helpers
    @property
    def max_record_bytes(self) -> int:
        return int(self.options.get("max_record_bytes", DEFAULT_MAX_RECORD_BYTES))

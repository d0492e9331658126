"""The operator contract: one small base class, a registry, and the `Decision` a filter returns.

Every pipeline step is an `Operator` subclass that is also a dataclass: its fields are exactly
the options the YAML accepts under the step's registry `name`, so a misspelt option is caught
before any data is read. The engine (local or Ray) is the only thing that knows about files,
workers, rejects and stats; operators only see `pyarrow.Table` batches.

Kinds:
- ``map``      batch -> batch with the same rows (may add/replace columns).
- ``annotate`` adds score/flag columns, never drops.
- ``filter``   returns a `Decision`: the batch (with its stats columns) plus a reject reason per row.
- ``barrier``  needs the whole dataset: `fit()` sees every batch first, then `process()` decides
               per batch (e.g. dedup: fit builds the clusters, process drops the non-keepers).
- ``output``   runs once on the finished dataset (`finalize`): packing, quality gate, report.

Any op may return a `Decision` from `process()` (e.g. tokenize rejects rows with no trainable
token); the kind says how the engine schedules it and whether `annotate_only` applies.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import pyarrow as pa

from instructkit.errors import ConfigError

KINDS = ("map", "annotate", "filter", "barrier", "output")

#: Options every step accepts beside its own: handled by the engine, not the operator.
COMMON_OPTIONS = ("annotate_only",)

BatchSource = Callable[[], Iterator[pa.Table]]


@dataclass
class Decision:
    """A batch plus, per row, why it is dropped (null = kept) and optional JSON details."""

    table: pa.Table
    reason: pa.Array  # string, null where the row is kept
    detail: pa.Array | None = None  # string (JSON), null where nothing to add

    @classmethod
    def from_mask(
        cls,
        table: pa.Table,
        keep: np.ndarray,
        reason: str | np.ndarray | pa.Array,
        detail: np.ndarray | pa.Array | list | None = None,
    ) -> "Decision":
        """Build a decision from a boolean keep mask and one reason (or one per row)."""
        keep = np.asarray(keep, dtype=bool)
        if isinstance(reason, str):
            reasons = np.where(keep, None, reason)
        else:
            reasons = np.where(keep, None, np.asarray(reason, dtype=object))
        reason_arr = pa.array(reasons, type=pa.string())
        detail_arr = None
        if detail is not None:
            det = np.asarray(detail, dtype=object) if not isinstance(detail, pa.Array) else detail.to_numpy(zero_copy_only=False)
            detail_arr = pa.array(np.where(keep, None, det), type=pa.string())
        return cls(table=table, reason=reason_arr, detail=detail_arr)

    def keep_mask(self) -> np.ndarray:
        return self.reason.is_null().to_numpy(zero_copy_only=False)


@dataclass
class OutputContext:
    """What an output step sees: the finished dataset and the run's manifest so far."""

    out_dir: Path
    data_files: list[Path]  # Parquet shards of the kept rows (all splits)
    manifest: dict[str, Any]

    def read(self, columns: list[str] | None = None) -> pa.Table:
        import pyarrow.parquet as pq

        tables = [pq.read_table(p, columns=columns) for p in self.data_files]
        return pa.concat_tables(tables) if tables else pa.table({})


class Operator:
    """Base class of every pipeline step. Subclasses are `@dataclass`es registered with `@register`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "map"
    reads: ClassVar[tuple[str, ...]] = ("messages",)
    writes: ClassVar[tuple[str, ...]] = ()

    def setup(self) -> None:
        """Load heavy state (models, tokenizers, indexes) once per worker, not at construction."""

    def process(self, batch: pa.Table) -> pa.Table | Decision:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, batches: BatchSource) -> None:
        """Barrier ops only: see the whole dataset (call `batches()` as often as needed)."""

    def finalize(self, ctx: OutputContext) -> dict[str, Any]:
        """Output ops only: work on the finished dataset; the returned dict goes into the manifest."""
        return {}

    def config(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} if dataclasses.is_dataclass(self) else {}


REGISTRY: dict[str, type[Operator]] = {}


def register(cls: type[Operator]) -> type[Operator]:
    """Class decorator: make `cls` available in YAML under `cls.name`."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no registry name")
    if cls.kind not in KINDS:
        raise TypeError(f"{cls.__name__}.kind must be one of {KINDS}, not {cls.kind!r}")
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise TypeError(f"operator name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def _check_type(where: str, key: str, value: Any, annotation: Any) -> None:
    """Loud check of scalar YAML option types (YAML typos like `threshold: 0,8` are common)."""
    if isinstance(annotation, str):
        simple = {"int": int, "float": (int, float), "str": str, "bool": bool}
        base = annotation.split("|")[0].strip()
        expected = simple.get(base)
        if expected is None or ("None" in annotation and value is None):
            return
        if base in ("int", "float") and isinstance(value, bool):
            raise ConfigError(f"{where}: option '{key}' expects {base}, got {value!r}")
        if not isinstance(value, expected):
            raise ConfigError(f"{where}: option '{key}' expects {base}, got {value!r}")


def build(spec: dict[str, Any] | str, where: str = "steps") -> tuple[Operator, dict[str, Any]]:
    """Build an operator from a YAML step: `{name: {options}}` or a bare `name`.

    Returns the operator and the engine-level common options (e.g. annotate_only).
    """
    import instructkit.ops  # noqa: F401  (registers every built-in operator)

    if isinstance(spec, str):
        spec = {spec: {}}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: a step is a mapping with exactly one operator name, got {spec!r}")
    (name, options), = spec.items()
    options = dict(options or {})
    if name not in REGISTRY:
        raise ConfigError(f"{where}: unknown operator '{name}' (known: {', '.join(sorted(REGISTRY))})")
    cls = REGISTRY[name]
    common = {k: options.pop(k) for k in COMMON_OPTIONS if k in options}
    field_names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    unknown = sorted(set(options) - field_names)
    if unknown:
        raise ConfigError(
            f"{where}.{name}: unknown option '{unknown[0]}' (expected one of: {', '.join(sorted(field_names)) or 'none'})"
        )
    hints = {f.name: f.type for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    for key, value in options.items():
        _check_type(f"{where}.{name}", key, value, hints.get(key))
    try:
        op = cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.{name}: {exc}") from None
    return op, common

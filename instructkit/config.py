"""Pipeline recipes: YAML in, a validated `PipelineConfig` out, with one-line errors.

Validation happens before any data is read, so a typo in step 9 costs a second, not the
hour it took steps 1-8 to run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from instructkit.engine.stage import Stage
from instructkit.errors import ConfigError
from instructkit.ops.base import build
from instructkit.yaml_file import read_yaml

_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "pipeline.schema.json"


@dataclass
class SplitConfig:
    eval_ratio: float = 0.0
    seed: int = 0


@dataclass
class OutputConfig:
    dir: Path
    shard_rows: int = 100_000
    jsonl: bool = False
    keep_work: bool = False


@dataclass
class EngineConfig:
    batch_size: int = 8192
    workers: int | str = 1
    name: str = "local"
    address: str | None = None
    #: Ray only: per-operator resources, e.g. {tokenize: {num_cpus: 1, memory: 2e9}}
    resources: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class PipelineConfig:
    name: str
    inputs: list[Any]  # InputSpec or in-memory tables
    stages: list[Stage]
    output: OutputConfig
    split: SplitConfig = field(default_factory=SplitConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    mix_seed: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    source_file: str | None = None


def _schema() -> dict[str, Any]:
    return json.loads(_SCHEMA_PATH.read_text())


def _where(err: jsonschema.ValidationError) -> str:
    parts = []
    for p in err.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (("." if parts else "") + str(p)))
    return "".join(parts) or "(top level)"


def validate(raw: Any, origin: str) -> None:
    """Check a recipe against schemas/pipeline.schema.json; raise ConfigError on the first problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: a pipeline recipe is a YAML mapping with inputs/steps/output, got {type(raw).__name__}")
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            raise ConfigError(f"{origin}: {_where(err)}: unknown key '{extra[0]}' (expected one of: {', '.join(allowed)})")
        raise ConfigError(f"{origin}: {_where(err)}: {err.message}")


def build_stages(steps: list[Any], origin: str) -> list[Stage]:
    stages = []
    seen_output = False
    for i, spec in enumerate(steps or []):
        op, common = build(spec, where=f"{origin}: steps[{i}]")
        if op.kind == "output":
            seen_output = True
        elif seen_output:
            raise ConfigError(f"{origin}: steps[{i}] ({op.name}) comes after an output step; output steps "
                              f"(pack, quality_gate, report, ...) must be last")
        stages.append(Stage(index=i + 1, op=op, annotate_only=bool(common.get("annotate_only", False))))
    return stages


def from_dict(raw: dict[str, Any], origin: str = "pipeline") -> PipelineConfig:
    from instructkit.io.spec import InputSpec

    validate(raw, origin)
    inputs = [InputSpec.from_dict(d, where=f"{origin}: inputs[{i}]") for i, d in enumerate(raw["inputs"])]
    names = [s.name for s in inputs if s.name]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{origin}: inputs: name '{sorted(dup)[0]}' is used twice; input names must be unique")
    out = raw["output"]
    eng = raw.get("engine", {})
    return PipelineConfig(
        name=raw.get("name") or Path(origin).stem,
        inputs=inputs,
        stages=build_stages(raw.get("steps", []), origin),
        output=OutputConfig(dir=Path(out["dir"]), shard_rows=out.get("shard_rows", 100_000),
                            jsonl=out.get("jsonl", False), keep_work=out.get("keep_work", False)),
        split=SplitConfig(**raw.get("split", {})),
        engine=EngineConfig(**eng),
        mix_seed=raw.get("mix", {}).get("seed", 0),
        raw=raw,
        source_file=origin,
    )


def load(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML file."""
    return from_dict(read_yaml(path, "pipeline file"), origin=str(path))

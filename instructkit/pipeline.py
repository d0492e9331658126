"""The Python API: `Pipeline([...]).run(...)` does what `instructkit run recipe.yaml` does."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from instructkit import config as cfgmod
from instructkit.config import EngineConfig, OutputConfig, PipelineConfig, SplitConfig
from instructkit.engine.stage import Stage
from instructkit.errors import ConfigError
from instructkit.ops.base import Operator


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict[str, Any]

    def read(self, split: str = "train") -> pa.Table:
        """Kept rows of one split as one Arrow table."""
        import pyarrow.parquet as pq

        files = sorted((self.out_dir / "data").glob(f"{split}-*.parquet"))
        return pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})

    def rejects(self) -> pa.Table:
        import pyarrow.parquet as pq

        files = sorted((self.out_dir / "rejects").glob("*.parquet"))
        return pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})


class Pipeline:
    """A list of steps plus where data comes from and goes to.

    Steps are operator instances or YAML-style specs (`{"minhash_dedup": {"threshold": 0.8}}`);
    inputs are `InputSpec`s, dicts as in YAML, paths, or pyarrow Tables in the canonical schema.
    """

    def __init__(
        self,
        steps: list[Operator | dict | str],
        inputs: list[Any] | None = None,
        output: str | Path | None = None,
        split: dict[str, Any] | None = None,
        name: str = "pipeline",
        batch_size: int = 8192,
        workers: int | str = 1,
        engine: str = "local",
    ):
        self.name = name
        self.steps = steps
        self.inputs = inputs or []
        self.output = output
        self.split = split or {}
        self.batch_size = batch_size
        self.workers = workers
        self.engine = engine
        self._config: PipelineConfig | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Pipeline":
        p = cls(steps=[])
        p._config = cfgmod.load(path)
        return p

    def _stages(self) -> list[Stage]:
        specs = [s for s in self.steps if not isinstance(s, Operator)]
        if specs and len(specs) == len(self.steps):
            return cfgmod.build_stages(self.steps, "Pipeline")
        stages = []
        for i, s in enumerate(self.steps):
            if isinstance(s, Operator):
                stages.append(Stage(index=i + 1, op=s))
            else:
                stages.extend(Stage(index=i + 1, op=st.op, annotate_only=st.annotate_only)
                              for st in cfgmod.build_stages([s], f"Pipeline.steps[{i}]"))
        return stages

    def _inputs(self, inputs: list[Any]) -> list[Any]:
        from instructkit.engine.local import InMemoryInput

        out = []
        for i, item in enumerate(inputs):
            if isinstance(item, pa.Table):
                out.append(InMemoryInput(item, name=f"memory{i}" if len(inputs) > 1 else "memory"))
                continue
            if isinstance(item, InMemoryInput):
                out.append(item)
                continue
            from instructkit.io.spec import InputSpec

            if isinstance(item, InputSpec):
                out.append(item)
            elif isinstance(item, (str, Path)):
                out.append(InputSpec.from_dict({"path": str(item)}, where=f"Pipeline.inputs[{i}]"))
            elif isinstance(item, dict):
                out.append(InputSpec.from_dict(item, where=f"Pipeline.inputs[{i}]"))
            else:
                raise ConfigError(f"Pipeline.inputs[{i}]: expected a path, dict, InputSpec or pyarrow.Table, got {type(item).__name__}")
        return out

    def config(self, inputs: list[Any] | None = None, out_dir: str | Path | None = None) -> PipelineConfig:
        if self._config is not None:
            cfg = self._config
            if out_dir is not None:
                cfg.output.dir = Path(out_dir)
            if inputs is not None:
                cfg.inputs = self._inputs(inputs)
            return cfg
        out = out_dir or self.output
        if out is None:
            raise ConfigError("Pipeline.run: no output directory (pass out_dir=...)")
        stages = self._stages()
        raw = {
            "name": self.name,
            "inputs": [repr(i) if not isinstance(i, dict) else i for i in (inputs or self.inputs)],
            "steps": [s.op.name + repr(s.op.config()) for s in stages],
            "split": self.split,
        }
        return PipelineConfig(
            name=self.name,
            inputs=self._inputs(inputs if inputs is not None else self.inputs),
            stages=stages,
            output=OutputConfig(dir=Path(out)),
            split=SplitConfig(**self.split),
            engine=EngineConfig(batch_size=self.batch_size, workers=self.workers, name=self.engine),
            raw=raw,
        )

    def run(self, inputs: list[Any] | None = None, out_dir: str | Path | None = None, resume: bool = False,
            progress: bool = True, engine: str | None = None, address: str | None = None) -> RunResult:
        cfg = self.config(inputs, out_dir)
        name = engine or cfg.engine.name
        if name == "ray":
            if resume:
                raise ConfigError("--resume works with the local engine only; Ray re-runs failed tasks by itself")
            from instructkit.engine.ray import run as run_ray

            manifest = run_ray(cfg, address=address or cfg.engine.address, show_progress=progress)
        elif name == "local":
            from instructkit.engine.local import run as run_local

            manifest = run_local(cfg, resume=resume, show_progress=progress)
        else:
            raise ConfigError(f"engine: unknown engine '{name}' (expected local or ray)")
        return RunResult(Path(cfg.output.dir), manifest)

"""The training recipe: YAML in, a typed `TrainConfig` out, with one-line errors.

Every option has a default and a type; an unknown key (a typo such as `learning_rate` for `lr`)
is an error naming the file and the key, because a silently ignored option is the worst kind of
training bug: the run works, just not the way you asked.

Paths are taken as written, relative to the directory you run `instructkit` from.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from instructkit.errors import ConfigError


@dataclass
class LoraSettings:
    """The adapter's shape; the names and meanings are PEFT's LoraConfig ones."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    use_rslora: bool = False


@dataclass
class TrainSettings:
    """Optimisation and bookkeeping. One step = `grad_accum` micro-batches of `batch_size` rows."""

    max_length: int = 512          # tokens per (packed) row
    batch_size: int = 8            # rows per micro-batch
    grad_accum: int = 1            # micro-batches per optimizer step
    epochs: float = 1.0            # used when max_steps is not set
    max_steps: int | None = None
    lr: float = 2e-4
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-8
    warmup_steps: int | None = None  # takes precedence over warmup_ratio
    warmup_ratio: float = 0.03
    min_lr_ratio: float = 0.0      # cosine decays to lr * min_lr_ratio
    max_grad_norm: float | None = 1.0
    seed: int = 0
    gradient_checkpointing: bool = False
    precision: str = "auto"        # auto | fp32 | bf16 | fp16 (auto: bf16/fp16 autocast on CUDA, fp32 elsewhere)
    device: str = "auto"           # auto | cpu | cuda | cuda:N | mps
    pack: bool = True              # pack unpacked data/ rows on the fly (packed/ data is used as is)
    eval_every: int = 0            # steps between eval-loss passes (0: only at the end, when eval data exists)
    eval_max_batches: int | None = None
    save_every: int = 0            # steps between checkpoints (0: none until the end)
    keep_checkpoints: int = 2
    log_every: int = 1
    resume: bool = True            # continue from the newest checkpoint in output_dir when one exists
    merge: bool = False            # also write a merged plain transformers checkpoint to output_dir/merged


@dataclass
class TrainConfig:
    model: str
    data: Path
    output_dir: Path
    force: bool = False            # train even when the dataset's quality gate did not pass
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    source_file: str | None = None

    @classmethod
    def from_dict(cls, raw: Any, origin: str = "train config") -> TrainConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(raw).__name__}")
        known = {"model", "data", "output_dir", "force", "lora", "train"}
        _check_keys(raw, known, origin, "")
        for key in ("model", "data", "output_dir"):
            if not raw.get(key):
                raise ConfigError(f"{origin}: '{key}' is required (e.g. {_EXAMPLES[key]})")
        lora = _build(LoraSettings, raw.get("lora") or {}, origin, "lora")
        train = _build(TrainSettings, raw.get("train") or {}, origin, "train")
        force = _coerce(raw.get("force", False), bool, origin, "force")
        cfg = cls(model=str(raw["model"]), data=Path(str(raw["data"])), output_dir=Path(str(raw["output_dir"])),
                  force=force, lora=lora, train=train, source_file=origin)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        o, t, lo = self.source_file or "train config", self.train, self.lora
        checks = [
            (lo.r > 0, "lora.r", "must be > 0"),
            (lo.alpha > 0, "lora.alpha", "must be > 0"),
            (0 <= lo.dropout < 1, "lora.dropout", "must be in [0, 1)"),
            (t.max_length > 1, "train.max_length", "must be > 1"),
            (t.batch_size > 0, "train.batch_size", "must be > 0"),
            (t.grad_accum > 0, "train.grad_accum", "must be > 0"),
            (t.lr > 0, "train.lr", "must be > 0"),
            (t.max_steps is None or t.max_steps > 0, "train.max_steps", "must be > 0"),
            (t.epochs > 0, "train.epochs", "must be > 0"),
            (0 <= t.warmup_ratio < 1, "train.warmup_ratio", "must be in [0, 1)"),
            (0 <= t.min_lr_ratio <= 1, "train.min_lr_ratio", "must be in [0, 1]"),
            (len(t.adam_betas) == 2, "train.adam_betas", "must be two numbers, e.g. [0.9, 0.999]"),
            (t.precision in ("auto", "fp32", "bf16", "fp16"), "train.precision", "must be auto, fp32, bf16 or fp16"),
            (t.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1"),
            (t.log_every >= 1, "train.log_every", "must be >= 1"),
        ]
        for ok, key, msg in checks:
            if not ok:
                raise ConfigError(f"{o}: {key} {msg}")
        if t.device != "auto" and not (t.device in ("cpu", "mps") or t.device.startswith("cuda")):
            raise ConfigError(f"{o}: train.device must be auto, cpu, cuda, cuda:N or mps, got {t.device!r}")


_EXAMPLES = {"model": "examples/models/stories260K", "data": "out/quickstart", "output_dir": "runs/quickstart"}


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training YAML file."""
    from instructkit.yaml_file import read_yaml

    raw = read_yaml(path, "training config")
    return TrainConfig.from_dict(raw, origin=str(path))


def _check_keys(raw: dict[str, Any], known: set[str], origin: str, section: str) -> None:
    for key in raw:
        if key not in known:
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(sorted(known))}"
            raise ConfigError(f"{origin}: unknown key '{section}{key}'{hint}")


def _build(cls: type, raw: Any, origin: str, section: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: '{section}' must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(raw, set(fields), origin, section + ".")
    hints = typing.get_type_hints(cls)
    values = {k: _coerce(v, hints[k], origin, f"{section}.{k}") for k, v in raw.items()}
    return cls(**values)


def _coerce(value: Any, hint: Any, origin: str, key: str) -> Any:
    """Accept a YAML value for a typed field, or raise naming the key and the expected type."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    if value is None and type(None) in options:
        return None
    for opt in options:
        if opt is type(None):
            continue
        origin_t = typing.get_origin(opt)
        if origin_t is list:
            (item_t,) = typing.get_args(opt) or (Any,)
            if isinstance(value, list) and all(_is(v, item_t) for v in value):
                return [float(v) if item_t is float else v for v in value]
            continue
        if _is(value, opt):
            return float(value) if opt is float else value
        if opt is float and isinstance(value, str):  # YAML reads 2e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    expected = " or ".join(_type_name(o) for o in options)
    raise ConfigError(f"{origin}: {key} must be {expected}, got {value!r}")


def _is(value: Any, t: Any) -> bool:
    if t is Any:
        return True
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, t)


def _type_name(t: Any) -> str:
    if t is type(None):
        return "null"
    if typing.get_origin(t) is list:
        return f"a list of {_type_name(typing.get_args(t)[0])}"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(t, str(t))

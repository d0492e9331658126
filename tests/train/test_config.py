"""Training YAML: typed, with one-line errors naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from instructkit.errors import ConfigError
from instructkit.train.config import TrainConfig, load_train_config

REPO = Path(__file__).resolve().parents[2]
BASE = {"model": "m", "data": "d", "output_dir": "o"}


def test_example_config_loads():
    cfg = load_train_config(REPO / "pipelines" / "train_quickstart.yaml")
    assert cfg.model == "examples/models/stories260K"
    assert cfg.lora.target_modules == "all-linear" and cfg.train.lr == pytest.approx(3e-3)


def test_defaults_and_types():
    cfg = TrainConfig.from_dict({**BASE, "lora": {"r": 4, "target_modules": ["q_proj"]},
                                 "train": {"lr": "2e-4", "max_steps": 5, "epochs": 2}})
    assert cfg.lora.r == 4 and cfg.lora.alpha == 16.0 and cfg.lora.target_modules == ["q_proj"]
    assert cfg.train.lr == 2e-4 and isinstance(cfg.train.epochs, float) and cfg.train.max_steps == 5


@pytest.mark.parametrize("raw,msg", [
    ({**BASE, "learning_rate": 1}, "unknown key 'learning_rate'"),
    ({**BASE, "train": {"learning_rate": 1}}, "unknown key 'train.learning_rate'"),
    ({**BASE, "train": {"batch_sise": 1}}, "did you mean 'batch_size'"),
    ({**BASE, "lora": {"r": "eight"}}, "lora.r must be an integer"),
    ({**BASE, "lora": {"r": 0}}, "lora.r must be > 0"),
    ({**BASE, "train": {"lr": -1}}, "train.lr must be > 0"),
    ({**BASE, "train": {"precision": "fp8"}}, "train.precision"),
    ({**BASE, "train": {"gradient_checkpointing": "yes"}}, "must be true/false"),
    ({"data": "d", "output_dir": "o"}, "'model' is required"),
    ({**BASE, "lora": [1]}, "'lora' must be a mapping"),
])
def test_errors(raw, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig.from_dict(raw, origin="x.yaml")


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\n  data: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_train_config(bad)

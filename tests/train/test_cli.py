"""`instructkit train CONFIG.yaml [--force]` through the real CLI entry point."""
from __future__ import annotations

import json

import yaml

from instructkit.cli import main

from .conftest import STORIES, write_pipeline_dir


def write_config(tmp_path, data, **train):
    cfg = {"model": str(STORIES), "data": str(data), "output_dir": str(tmp_path / "run"),
           "lora": {"r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]},
           "train": {"max_length": 128, "batch_size": 4, "max_steps": 2, **train}}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_command_refuses_ungated_data_then_trains_with_force(tmp_path, pairs, capsys):
    data = write_pipeline_dir(tmp_path / "ds", pairs[:12], gate=False)
    config = write_config(tmp_path, data)
    assert main(["train", str(config), "-q"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "quality gate" in err and "--force" in err and len(err.splitlines()) == 1
    assert main(["train", str(config), "--force", "-q"]) == 0
    adapter = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert adapter["target_modules"] == ["q_proj", "v_proj"] and adapter["r"] == 2
    assert (tmp_path / "run" / "loss.png").exists()


def test_bad_config_is_one_line(tmp_path, pairs, capsys):
    data = write_pipeline_dir(tmp_path / "ds", pairs[:12])
    config = write_config(tmp_path, data, learning_rate=0.1)
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'train.learning_rate'" in err and len(err.splitlines()) == 1


def test_quickstart_recipe_runs_on_a_pipeline_dir(tmp_path, pairs, repo_root, capsys):
    """pipelines/train_quickstart.yaml as shipped, pointed at a tokenized dataset dir."""
    recipe = yaml.safe_load((repo_root / "pipelines" / "train_quickstart.yaml").read_text())
    recipe["model"] = str(STORIES)
    recipe["data"] = str(write_pipeline_dir(tmp_path / "ds", pairs, n_eval=4))
    recipe["output_dir"] = str(tmp_path / "run")
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "--max-steps", "6"]) == 0
    err = capsys.readouterr().err
    assert "trained 6 steps" in err and "eval loss" in err


def test_data_from_another_tokenizer_is_refused(tmp_path, pairs, capsys):
    wrong = [([x + 1000 for x in ids], labels) for ids, labels in pairs[:8]]
    config = write_config(tmp_path, write_pipeline_dir(tmp_path / "ds", wrong))
    assert main(["train", str(config), "-q"]) == 2
    assert "outside" in capsys.readouterr().err


def test_trainer_does_not_import_peft_or_trl():
    import subprocess
    import sys

    code = ("import sys, instructkit.train.loop, instructkit.train.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('peft', 'trl', 'accelerate')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)

"""Fixtures for trainer tests: the vendored stories260K model and a tiny tokenized dataset built
from real OpenAssistant conversations (tests/fixtures/train/oasst2_en_pairs.jsonl, Apache-2.0)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
STORIES = REPO / "examples" / "models" / "stories260K"
PAIRS = REPO / "tests" / "fixtures" / "train" / "oasst2_en_pairs.jsonl"


def tokenize_pairs(max_tokens: int = 120) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per conversation with a plain "User:/Assistant:" format.

    BOS + prompt are masked (-100); the answer and its EOS are trained. The answer is cut so a
    sequence stays under `max_tokens` (the model is tiny; short rows keep the tests fast).
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(STORIES)
    out = []
    for line in PAIRS.read_text().splitlines():
        msgs = json.loads(line)["messages"]
        prompt = tok(f"User: {msgs[0]['content']}\nAssistant:", add_special_tokens=False).input_ids[: max_tokens // 2]
        answer = tok(" " + msgs[1]["content"], add_special_tokens=False).input_ids
        answer = answer[: max_tokens - len(prompt) - 2] + [tok.eos_token_id]
        ids = [tok.bos_token_id] + prompt + answer
        labels = [-100] * (1 + len(prompt)) + answer
        out.append((ids, labels))
    return out


def write_pipeline_dir(root: Path, pairs: list[tuple[list[int], list[int]]], *, gate: bool | None = True,
                       n_eval: int = 0, packed_rows: list[dict] | None = None) -> Path:
    """A directory shaped like a pipeline output: data/train-*.parquet (+ eval), manifest.json."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    train, evl = pairs[n_eval:], pairs[:n_eval]
    for name, part in (("train-00000", train), ("eval-00000", evl)):
        if part:
            pq.write_table(pa.table({"input_ids": [p[0] for p in part], "labels": [p[1] for p in part]}),
                           root / "data" / f"{name}.parquet")
    if packed_rows is not None:
        (root / "packed").mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(packed_rows), root / "packed" / "train-00000.parquet")
    manifest: dict = {"counts": {"written": len(pairs)}}
    if gate is not None:
        manifest["gate"] = {"passed": gate}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The models here are tiny: one thread is as fast, and it stays fast on a busy shared CPU
    (several threads spin-waiting for each other on oversubscribed cores can be 10x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def pairs() -> list[tuple[list[int], list[int]]]:
    return tokenize_pairs()


@pytest.fixture
def dataset_dir(tmp_path: Path, pairs) -> Path:
    return write_pipeline_dir(tmp_path / "ds", pairs, gate=True, n_eval=6)


def train_config(data: Path, out: Path, **train_overrides):
    from instructkit.train.config import LoraSettings, TrainConfig, TrainSettings

    settings = dict(max_length=128, batch_size=4, grad_accum=1, max_steps=6, lr=5e-3, warmup_steps=1,
                    seed=0, log_every=1)
    settings.update(train_overrides)
    lora = settings.pop("lora", LoraSettings(r=4, alpha=8, dropout=0.0))
    cfg = TrainConfig(model=str(STORIES), data=data, output_dir=out, lora=lora, train=TrainSettings(**settings))
    cfg.validate()
    return cfg


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)

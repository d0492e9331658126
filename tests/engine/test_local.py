"""The local engine: accounting, rejects, barriers, resume, workers, mixing and splitting."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from instructkit import Pipeline
from instructkit.engine.local import InMemoryInput
from instructkit.engine.manifest import check_accounting
from instructkit.errors import GateFailed, InvariantError
from instructkit.ops.base import Decision, Operator, register
from tests.conftest import make_table


def conversations(n: int, empty_every: int = 10, source: str = "test") -> pa.Table:
    convs = [[("user", f"Question number {i}?"), ("assistant", "" if i % empty_every == 0 else f"Answer {i % 37}.")]
             for i in range(n)]
    return make_table(convs, ids=[f"id{i:05d}" for i in range(n)], source=source)


@register
@dataclass
class _KeepFirstOfAnswer(Operator):
    """Test barrier: keeps the first row (by id) for each distinct assistant text."""

    name = "test_keep_first_answer"
    kind = "barrier"
    fits: int = 0

    def fit(self, batches):
        self.fits += 1
        seen: dict[str, str] = {}
        for b in batches():
            ids = b.column("id").to_pylist()
            answers = [m[-1]["content"] for m in b.column("messages").to_pylist()]
            for i, a in zip(ids, answers):
                if a not in seen or i < seen[a]:
                    seen[a] = i
        self.keepers = set(seen.values())

    def process(self, batch):
        keep = np.array([i in self.keepers for i in batch.column("id").to_pylist()])
        return Decision.from_mask(batch, keep, "duplicate_answer")


@register
@dataclass
class _CrashOnce(Operator):
    """Test op: raises the first time it runs (marker file), like a worker dying mid-run."""

    name = "test_crash_once"
    kind = "map"
    marker: str = ""

    def process(self, batch):
        p = Path(self.marker)
        if not p.exists():
            p.write_text("crashed")
            raise RuntimeError("simulated crash")
        return batch


@register
@dataclass
class _SilentDrop(Operator):
    """Test op that breaks the contract: a map that loses rows without a reason."""

    name = "test_silent_drop"
    kind = "map"

    def process(self, batch):
        return batch.slice(1)


@register
@dataclass
class _FailGate(Operator):
    name = "test_fail_gate"
    kind = "output"

    def finalize(self, ctx):
        exc = GateFailed("gate failed: expect_answers_nonempty observed 0.4 expected <= 0.0")
        exc.result = {"gate": {"passed": False, "failed": ["expect_answers_nonempty"]}}
        raise exc


def test_accounting_and_rejects_carry_stage_reason_and_provenance(tmp_path):
    res = Pipeline(["normalize", "drop_empty_turns"]).run([conversations(200)], out_dir=tmp_path)
    c = res.manifest["counts"]
    assert c == {"read": 200, "written": 180, "rejected": 20, "by_split": {"train": 180, "eval": 0}}
    assert res.manifest["accounting"]["ok"]
    rej = res.rejects()
    assert set(rej.column("stage").to_pylist()) == {"02_drop_empty_turns"}
    assert set(rej.column("reason").to_pylist()) == {"no_assistant_turn"}
    assert rej.column("_line").to_pylist()[:2] == [1, 11]  # provenance: the row's line in its input
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"]["read"] == 200


def test_accounting_check_fires():
    with pytest.raises(InvariantError, match="1 rows lost"):
        check_accounting(read=10, written=8, rejected=1)
    assert check_accounting(10, 9, 1)["ok"]


def test_a_map_that_silently_drops_rows_is_caught(tmp_path):
    with pytest.raises(InvariantError, match="only filters may drop rows"):
        Pipeline(["test_silent_drop"]).run([conversations(20)], out_dir=tmp_path)


def test_annotate_only_keeps_every_row_but_adds_columns(tmp_path):
    res = Pipeline([{"length_filter": {"min_assistant_chars": 1000, "annotate_only": True}}]).run(
        [conversations(50)], out_dir=tmp_path)
    assert res.manifest["counts"]["written"] == 50
    assert "chars_assistant" in res.read().column_names


def test_barrier_sees_whole_dataset_across_batches(tmp_path):
    res = Pipeline(["drop_empty_turns", "test_keep_first_answer", "normalize"], batch_size=16).run(
        [conversations(300)], out_dir=tmp_path)
    kept = res.read()
    answers = [m[-1]["content"] for m in kept.column("messages").to_pylist()]
    assert len(answers) == len(set(answers)) == 37
    assert res.manifest["counts"]["read"] == 300
    assert res.manifest["rejects_by_stage"]["02_test_keep_first_answer"]["duplicate_answer"] == 270 - 37


def test_workers_give_identical_output(tmp_path):
    steps = ["normalize", "drop_empty_turns", {"length_filter": {"min_assistant_chars": 9}}]
    a = Pipeline(steps, batch_size=32, workers=1).run([conversations(400)], out_dir=tmp_path / "a")
    b = Pipeline(steps, batch_size=32, workers=2).run([conversations(400)], out_dir=tmp_path / "b")
    assert a.read().equals(b.read())
    assert a.manifest["counts"] == b.manifest["counts"]


def test_resume_restarts_after_last_completed_barrier(tmp_path):
    marker = tmp_path / "crashed"
    steps = ["drop_empty_turns", "test_keep_first_answer", {"test_crash_once": {"marker": str(marker)}}]
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated crash"):
        Pipeline(steps, batch_size=16).run([conversations(120)], out_dir=out)
    assert (out / "_work" / "seg0" / "_DONE.json").exists()
    resumed = Pipeline(steps, batch_size=16).run([conversations(120)], out_dir=out, resume=True)
    assert resumed.manifest["engine"]["resumed_from_segment"] == 1
    fresh = Pipeline(steps, batch_size=16).run([conversations(120)], out_dir=tmp_path / "fresh")
    assert resumed.read().equals(fresh.read())
    assert resumed.manifest["counts"] == fresh.manifest["counts"]
    assert resumed.manifest["rejects_by_stage"] == fresh.manifest["rejects_by_stage"]


def test_split_is_stable_by_id_when_rows_are_added(tmp_path):
    small = Pipeline([], split={"eval_ratio": 0.2, "seed": 7}).run([conversations(300)], out_dir=tmp_path / "s")
    big = Pipeline([], split={"eval_ratio": 0.2, "seed": 7}).run([conversations(900)], out_dir=tmp_path / "b")
    eval_small = set(small.read("eval").column("id").to_pylist())
    eval_big = set(big.read("eval").column("id").to_pylist())
    train_small = set(small.read("train").column("id").to_pylist())
    assert eval_small and eval_small <= eval_big
    assert not (train_small & eval_big)
    assert 0.12 < len(eval_big) / 900 < 0.28


def test_mixing_weight_and_cap_are_stable_and_accounted(tmp_path):
    a = InMemoryInput(conversations(400, empty_every=10**9, source="a"), name="a", weight=0.25)
    b = InMemoryInput(make_table([[("user", f"b{i}"), ("assistant", "x")] for i in range(300)],
                                 ids=[f"b{i}" for i in range(300)], source="b"), name="b", cap=50)
    res = Pipeline([]).run([a, b], out_dir=tmp_path / "m")
    kept = res.read()
    src = kept.column("source").to_pylist()
    assert src.count("b") == 50
    assert 60 < src.count("a") < 140
    assert res.manifest["counts"]["rejected"] == 700 - kept.num_rows
    assert set(res.rejects().column("reason").to_pylist()) == {"sampled_out"}
    again = Pipeline([]).run([a, b], out_dir=tmp_path / "m2")
    assert again.read().column("id").to_pylist() == kept.column("id").to_pylist()


def test_failed_gate_quarantines_output_and_records_it(tmp_path):
    with pytest.raises(GateFailed, match="expect_answers_nonempty"):
        Pipeline(["drop_empty_turns", "test_fail_gate"]).run([conversations(30)], out_dir=tmp_path)
    assert not (tmp_path / "data").exists()
    assert list((tmp_path / "quarantine" / "data").glob("*.parquet"))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "gate_failed" and manifest["gate"]["passed"] is False

"""The Ray engine against the local engine: same kept rows, same rejects, same counts, on a real
local Ray cluster (2 CPUs). One cluster for the whole module keeps this file under a minute or two."""
from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

ray = pytest.importorskip("ray")

from instructkit import Pipeline  # noqa: E402
from instructkit.engine.local import InMemoryInput  # noqa: E402
from instructkit.errors import InvariantError  # noqa: E402
from instructkit.ops.base import Decision, Operator, register  # noqa: E402
from tests.conftest import make_table  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    from ray import cloudpickle

    # workers cannot import this test module by name: ship its operator classes by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    os.environ["RAY_DEDUP_LOGS"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


# ---------------------------------------------------------------- test operators
@register
@dataclass
class _DieOnce(Operator):
    """Kills its worker process the first time it runs (marker file): Ray must retry the task."""

    name = "test_ray_die_once"
    kind = "map"
    marker: str = ""

    def process(self, batch):
        p = Path(self.marker)
        if not p.exists():
            p.write_text("died")
            os._exit(1)
        return batch


@register
@dataclass
class _DieOnceWithSetup(_DieOnce):
    """Same, but with a setup(): the engine runs it in an actor pool, so Ray must restart the actor."""

    name = "test_ray_die_once_actor"
    loaded: bool = False

    def setup(self):
        self.loaded = True

    def process(self, batch):
        assert self.loaded, "setup() did not run in the actor"
        return super().process(batch)


@register
@dataclass
class _KeepFirstPerAnswer(Operator):
    """A barrier with no distributed strategy: the engine must fall back to fit/process on the driver."""

    name = "test_ray_keep_first_answer"
    kind = "barrier"

    def fit(self, batches):
        seen: dict[str, str] = {}
        for b in batches():
            for i, m in zip(b.column("id").to_pylist(), b.column("messages").to_pylist()):
                seen.setdefault(m[-1]["content"], i)
        self.keepers = set(seen.values())

    def process(self, batch):
        keep = np.array([i in self.keepers for i in batch.column("id").to_pylist()], dtype=bool)
        return Decision.from_mask(batch, keep, "duplicate_answer")


@register
@dataclass
class _SilentDrop(Operator):
    name = "test_ray_silent_drop"
    kind = "map"

    def process(self, batch):
        return batch.slice(1)


# ---------------------------------------------------------------- data
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega").split()


def chat_table(n: int, seed: int, source: str, bad_every: int = 0) -> pa.Table:
    """Conversations with planted exact and near duplicates, empty answers, bad role orders,
    repeated ids (keep-policy ties) and, optionally, rows a reader flagged as malformed."""
    rng = random.Random(seed)
    base = [" ".join(rng.choice(WORDS) for _ in range(25)) for _ in range(max(1, n // 5))]
    convs, ids, errors = [], [], []
    for i in range(n):
        b = rng.choice(base)
        r = rng.random()
        if r < 0.25:
            question = b
        elif r < 0.5:
            w = b.split()
            w[rng.randrange(len(w))] = rng.choice(WORDS)
            question = " ".join(w)
        else:
            question = " ".join(rng.choice(WORDS) for _ in range(25))
        if rng.random() < 0.1:
            question = "  " + question.upper() + "  "
        answer = "" if i % 23 == 0 else f"Answer {rng.randrange(4)}" + "!" * rng.randrange(6)
        conv = [("user", question), ("assistant", answer)]
        if i % 31 == 0:
            conv = [("assistant", answer), ("user", question)]
        convs.append(conv)
        ids.append(f"{source}{rng.randrange(n // 2):05d}")  # collisions on purpose
        errors.append("bad_json: line is not JSON" if bad_every and i % bad_every == 7 else None)
    t = make_table(convs, ids=ids, source=source)
    return t.append_column("_error", pa.array(errors, pa.string()))


def run_both(steps, inputs, tmp_path: Path, **kw):
    local = Pipeline(steps, **kw).run(inputs, out_dir=tmp_path / "local", engine="local", progress=False)
    on_ray = Pipeline(steps, **kw).run(inputs, out_dir=tmp_path / "ray", engine="ray", progress=False)
    return local, on_ray


def assert_identical(local, on_ray) -> None:
    for split in ("train", "eval"):
        a, b = local.read(split), on_ray.read(split)
        assert a.num_rows == b.num_rows, split
        assert a.equals(b), f"{split}: kept rows differ"
    key = [("stage", "ascending"), ("_file", "ascending"), ("_line", "ascending")]
    ra, rb = local.rejects().sort_by(key), on_ray.rejects().sort_by(key)
    assert ra.equals(rb), "rejects differ"
    ma, mb = local.manifest, on_ray.manifest
    assert ma["counts"] == mb["counts"]
    assert ma["rejects_by_stage"] == mb["rejects_by_stage"]
    assert ma["inputs"] == mb["inputs"]
    strip = lambda stages: [{k: v for k, v in s.items() if k != "seconds"} for s in stages]  # noqa: E731
    assert strip(ma["stages"]) == strip(mb["stages"])
    assert mb["engine"]["name"] == "ray" and mb["accounting"]["ok"]


# ---------------------------------------------------------------- tests
def test_quickstart_like_pipeline_matches_local_row_for_row(tmp_path):
    leaked = ("Write a 300+ word summary of the wikipedia page \"https://en.wikipedia.org/wiki/Raymond_III,_Count_of_"
              "Tripoli\". Do not use any commas and highlight at least 3 sections that has titles in markdown format")
    bench = make_table([[("user", leaked), ("assistant", "Raymond III was a count.")],
                        [("user", "What is a count?"), ("assistant", "A noble title, below a duke.")]],
                       ids=["leak", "clean"], source="bench")
    inputs = [InMemoryInput(chat_table(600, 1, "a", bad_every=40), name="a"),
              InMemoryInput(chat_table(500, 2, "b"), name="b", weight=0.7),
              InMemoryInput(chat_table(300, 3, "c"), name="c", cap=120),
              InMemoryInput(bench, name="bench")]
    steps = ["normalize", "drop_empty_turns", "validate_roles", {"length_filter": {"min_assistant_chars": 9}},
             {"decontaminate": {"benchmarks": ["builtin:ifeval_sample"]}}, "exact_dedup"]
    local, on_ray = run_both(steps, inputs, tmp_path, batch_size=128, split={"eval_ratio": 0.2, "seed": 3})
    assert_identical(local, on_ray)
    reasons = {r for s in on_ray.manifest["rejects_by_stage"].values() for r in s}
    # the comparison above is only meaningful if every kind of reject happened
    assert {"bad_json", "sampled_out", "no_assistant_turn", "first_turn_not_user", "exact_duplicate",
            "benchmark_contamination"} <= reasons
    assert on_ray.manifest["rejects_by_stage"]["05_decontaminate"] == {"benchmark_contamination": 1}
    assert on_ray.manifest["counts"]["by_split"]["eval"] > 0
    assert on_ray.manifest["engine"]["barriers"]["06_exact_dedup"]["mode"] == "distributed"
    assert "05_decontaminate" in on_ray.manifest["engine"]["broadcast_setup"]


def test_dedup_heavy_pipeline_matches_local_including_keep_ties(tmp_path):
    inputs = [chat_table(900, 4, "d"), chat_table(700, 5, "e")]
    steps = ["drop_empty_turns",
             {"exact_dedup": {"key": "first_user", "keep": "longest"}},
             {"minhash_dedup": {"threshold": 0.7, "ngram": 3, "keep": "longest", "verify": "signature"}},
             "normalize",
             {"minhash_dedup": {"threshold": 0.5, "ngram": 2}},  # verify: exact (the default)
             "test_ray_keep_first_answer"]
    local, on_ray = run_both(steps, inputs, tmp_path, batch_size=200)
    assert_identical(local, on_ray)
    modes = {k: v["mode"] for k, v in on_ray.manifest["engine"]["barriers"].items()}
    assert modes == {"02_exact_dedup": "distributed", "03_minhash_dedup": "distributed",
                     "05_minhash_dedup": "distributed", "06_test_ray_keep_first_answer": "fallback"}
    by_stage = on_ray.manifest["rejects_by_stage"]
    assert by_stage["02_exact_dedup"]["exact_duplicate"] > 50
    assert by_stage["03_minhash_dedup"]["near_duplicate"] > 50
    kept = on_ray.read()
    assert {"exact_dup_cluster", "dup_cluster", "dup_similarity"} <= set(kept.column_names)


def test_killed_workers_are_retried_and_the_result_is_unchanged(tmp_path):
    inputs = [chat_table(400, 6, "f")]
    plain = ["normalize", "drop_empty_turns", "exact_dedup", "validate_roles"]
    dying = ["normalize", {"test_ray_die_once": {"marker": str(tmp_path / "task-died")}}, "drop_empty_turns",
             "exact_dedup", {"test_ray_die_once_actor": {"marker": str(tmp_path / "actor-died")}}, "validate_roles"]
    local = Pipeline(plain, batch_size=64).run(inputs, out_dir=tmp_path / "local", progress=False)
    on_ray = Pipeline(dying, batch_size=64).run(inputs, out_dir=tmp_path / "ray", engine="ray", progress=False)
    assert (tmp_path / "task-died").exists() and (tmp_path / "actor-died").exists()  # both really died once
    assert local.read().drop_columns([]).equals(on_ray.read())
    assert local.manifest["counts"] == on_ray.manifest["counts"]
    key = [("_file", "ascending"), ("_line", "ascending")]
    cols = ["id", "reason", "detail", "_line"]
    assert local.rejects().sort_by(key).select(cols).equals(on_ray.rejects().sort_by(key).select(cols))


def test_operator_errors_reach_the_user_as_instructkit_errors(tmp_path):
    with pytest.raises(InvariantError, match="only filters may drop rows") as info:
        Pipeline(["test_ray_silent_drop"]).run([chat_table(50, 7, "g")], out_dir=tmp_path, engine="ray",
                                               progress=False)
    assert "\n" not in str(info.value)  # the CLI prints it as one line, without Ray's traceback


def test_cli_runs_a_yaml_recipe_with_file_inputs_on_ray(tmp_path):
    """The user-facing path: `instructkit run recipe.yaml --engine ray`, JSONL + Parquet inputs read by
    our readers inside Ray tasks (relative paths, a malformed line), compared with --engine local."""
    import json

    import pyarrow.parquet as pq
    import yaml

    from instructkit.cli import main

    rng = random.Random(8)
    lines = []
    for i in range(300):
        q = " ".join(rng.choice(WORDS) for _ in range(12)) if i % 4 else "what is the capital of france"
        lines.append(json.dumps({"instruction": q, "input": "", "output": "" if i % 29 == 0 else f"It is {i % 7}."}))
    lines[17] = '{"instruction": "broken'
    (tmp_path / "alpaca.jsonl").write_text("\n".join(lines) + "\n")
    pq.write_table(chat_table(200, 9, "p").drop_columns(["_error"]), tmp_path / "chats.parquet")
    recipe = {"name": "ray_cli", "inputs": [{"path": "alpaca.jsonl", "format": "alpaca"},
                                            {"path": "chats.parquet", "format": "canonical", "weight": 0.8}],
              "steps": ["normalize", "drop_empty_turns", "exact_dedup",
                        {"minhash_dedup": {"threshold": 0.7, "ngram": 3}}],
              "split": {"eval_ratio": 0.1, "seed": 1},
              "output": {"dir": "out"}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative input paths, as users write them
    try:
        assert main(["run", "recipe.yaml", "--engine", "local", "--out", "local", "-q"]) == 0
        assert main(["run", "recipe.yaml", "--engine", "ray", "--out", "ray", "-q"]) == 0
    finally:
        os.chdir(cwd)
    from instructkit.pipeline import RunResult

    def result(name):
        return RunResult(tmp_path / name, json.loads((tmp_path / name / "manifest.json").read_text()))

    local, on_ray = result("local"), result("ray")
    assert_identical(local, on_ray)
    assert on_ray.manifest["counts"]["read"] == 500
    assert sum(on_ray.manifest["rejects_by_stage"].get("00_read", {}).values()) == 1


def test_segment_resources_take_the_largest_request_and_reject_typos():
    from types import SimpleNamespace

    from instructkit.engine.ray import segment_resources
    from instructkit.errors import ConfigError
    from instructkit.ops.base import build

    ops = [build("normalize")[0], build("drop_empty_turns")[0]]
    cfg = SimpleNamespace(engine=SimpleNamespace(resources={"normalize": {"num_cpus": 2},
                                                            "drop_empty_turns": {"num_cpus": 1, "num_gpus": 0.5}}))
    assert segment_resources(cfg, ops) == {"num_cpus": 2.0, "num_gpus": 0.5}
    assert segment_resources(SimpleNamespace(engine=SimpleNamespace()), ops) == {}
    cfg.engine.resources = {"normalize": {"gpus": 1}}
    with pytest.raises(ConfigError, match="unknown resource 'gpus'"):
        segment_resources(cfg, ops)

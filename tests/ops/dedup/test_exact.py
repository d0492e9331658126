"""exact_dedup through the engine: rejects explain the cluster, keep policies, incremental index."""
from __future__ import annotations

import json

import pytest

from instructkit import Pipeline
from instructkit.errors import ConfigError
from tests.conftest import make_table


def _convs():
    return [
        [("user", "What is 2+2?"), ("assistant", "4")],
        [("user", "what is  2+2?"), ("assistant", "4")],  # same after case/space normalization
        [("user", "What is 2+2?"), ("assistant", "Four, because two plus two is four.")],
        [("user", "Name a colour."), ("assistant", "Blue")],
        [("user", "What is 2+2?"), ("assistant", "4")],
        [("user", ""), ("assistant", "")],
        [("user", ""), ("assistant", "")],
    ]


def test_conversation_key_keeps_first_and_explains(tmp_path):
    res = Pipeline(["exact_dedup"], batch_size=3).run([make_table(_convs())], out_dir=tmp_path)
    kept = res.read()
    # rows 5 and 6 are identical (empty-content) conversations: duplicates under this key
    assert kept.column("id").to_pylist() == ["row0", "row2", "row3", "row5"]
    assert kept.column("exact_dup_count").to_pylist() == [3, 1, 1, 2]
    rej = res.rejects()
    details = {i: json.loads(d) for i, d in zip(rej.column("id").to_pylist(), rej.column("detail").to_pylist())}
    assert sorted(details) == ["row1", "row4", "row6"]
    assert details["row1"] == details["row4"] == {"cluster": 0, "cluster_size": 3, "kept_id": "row0", "kept_from_index": False}
    assert details["row6"]["kept_id"] == "row5" and details["row6"]["cluster"] == 5
    assert set(rej.column("reason").to_pylist()) == {"exact_duplicate"}
    assert res.manifest["counts"]["read"] == 7


def test_first_user_key_and_longest_policy(tmp_path):
    res = Pipeline([{"exact_dedup": {"key": "first_user", "keep": "longest"}}]).run(
        [make_table(_convs())], out_dir=tmp_path)
    kept = res.read().column("id").to_pylist()
    assert "row2" in kept and not {"row0", "row1", "row4"} & set(kept)  # longest answer wins
    assert {"row5", "row6"} <= set(kept)  # empty keys (no user text) are not duplicates of each other


def test_max_column_policy_and_missing_column(tmp_path):
    # the column comes from an earlier step (length_filter writes chars_assistant)
    t = make_table([[("user", "q"), ("assistant", "a" * k)] for k in (1, 9, 5)])
    steps = ["length_filter", {"exact_dedup": {"key": "first_user", "keep": "max:chars_assistant"}}]
    res = Pipeline(steps).run([t], out_dir=tmp_path / "a")
    assert res.read().column("id").to_pylist() == ["row1"]
    with pytest.raises(ConfigError, match="nope"):
        Pipeline([{"exact_dedup": {"keep": "max:nope"}}]).run([t], out_dir=tmp_path / "b")


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="keep"):
        Pipeline([{"exact_dedup": {"keep": "random"}}]).run([make_table(_convs())], out_dir=tmp_path)
    with pytest.raises(ConfigError, match="key"):
        Pipeline([{"exact_dedup": {"key": "everything"}}]).run([make_table(_convs())], out_dir=tmp_path)


def test_incremental_against_saved_index(tmp_path):
    idx = tmp_path / "idx"
    first = make_table([[("user", "Old question"), ("assistant", "Old answer")], [("user", "Q2"), ("assistant", "A2")]],
                       ids=["old0", "old1"])
    Pipeline([{"exact_dedup": {"index_out": str(idx)}}]).run([first], out_dir=tmp_path / "one")
    second = make_table([[("user", "old QUESTION"), ("assistant", "old answer")], [("user", "New"), ("assistant", "A")]],
                        ids=["new0", "new1"])
    res = Pipeline([{"exact_dedup": {"index_in": str(idx)}}]).run([second], out_dir=tmp_path / "two")
    assert res.read().column("id").to_pylist() == ["new1"]
    d = json.loads(res.rejects().column("detail")[0].as_py())
    assert d["kept_id"] == "old0" and d["kept_from_index"] is True
    with pytest.raises(ConfigError, match="key"):
        Pipeline([{"exact_dedup": {"index_in": str(idx), "key": "first_user"}}]).run([second], out_dir=tmp_path / "3")
    with pytest.raises(ConfigError, match="not a dedup index"):
        Pipeline([{"exact_dedup": {"index_in": str(tmp_path)}}]).run([second], out_dir=tmp_path / "4")

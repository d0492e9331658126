"""OASST trees: which root-to-leaf paths are kept, in which order, and what a prompt-only tree gives."""
from __future__ import annotations

import json

from instructkit.io.formats.oasst import flatten_tree
from tests.io.conftest import FIXTURES, good, jsonl, read_all

TREES = jsonl(FIXTURES / "oasst2_trees.jsonl")


def _paths(node, prefix=()):
    """Independent enumeration of root-to-leaf paths (no ranking, no cutting)."""
    here = prefix + (node,)
    reps = [r for r in node.get("replies") or [] if not r.get("deleted") and r.get("review_result") is not False]
    if not reps:
        yield list(here)
    for r in reps:
        yield from _paths(r, here)


def _cut(path):
    while path and path[-1]["role"] != "assistant":
        path = path[:-1]
    return path


def test_all_paths_end_on_assistant_and_cover_every_assistant_leaf():
    t = read_all(FIXTURES / "oasst2_trees.jsonl")
    rows = good(t)
    expected = []
    for tree in TREES[:2]:
        seen = set()
        for p in _paths(tree["prompt"]):
            c = _cut(p)
            if len(c) >= 2 and c[-1]["message_id"] not in seen:
                seen.add(c[-1]["message_id"])
                expected.append(c)
    assert sorted(r["id"] for r in rows) == sorted(c[-1]["message_id"] for c in expected)
    by_id = {r["id"]: r for r in rows}
    for c in expected:
        row = by_id[c[-1]["message_id"]]
        assert row["messages"] == [{"role": "user" if m["role"] == "prompter" else "assistant", "content": m["text"]}
                                   for m in c]
        meta = json.loads(row["meta"])
        assert meta["message_ids"] == [m["message_id"] for m in c] and meta["lang"] == "en"


def test_rank_zero_reply_comes_first_and_best_path_follows_it():
    tree = TREES[1]
    convs, err = flatten_tree(tree, "all")
    assert err is None
    first_reply = convs[0][0][1]
    ranks = [r.get("rank") for r in tree["prompt"]["replies"]]
    assert first_reply.get("rank") == min(r for r in ranks if r is not None)
    best, _ = flatten_tree(tree, "best")
    assert len(best) == 1
    node, path = tree["prompt"], [tree["prompt"]["message_id"]]
    while node.get("replies"):
        node = min(node["replies"], key=lambda r: (r.get("rank") is None, r.get("rank") or 0))
        path.append(node["message_id"])
    cut = [m["message_id"] for m in _cut([m for m in best[0][0]])]
    assert cut == [m for m in path][: len(cut)]
    rows = good(read_all(FIXTURES / "oasst2_trees.jsonl", format="oasst", options={"paths": "best"}))
    assert len(rows) == 2  # one per tree that has an answer


def test_prompt_only_tree_is_a_reject_not_a_silent_skip():
    t = read_all(FIXTURES / "oasst2_trees.jsonl")
    rejects = [r for r in t.to_pylist() if r["_error"]]
    assert len(rejects) == 1 and rejects[0]["_line"] == 3
    assert rejects[0]["_error"].startswith("empty_conversation")
    assert rejects[0]["id"] == TREES[2]["message_tree_id"]


def test_deleted_replies_are_cut_and_langs_filter():
    tree = json.loads(json.dumps(TREES[0]))
    for r in tree["prompt"]["replies"]:
        r["deleted"] = True
    convs, err = flatten_tree(tree)
    assert convs == [] and err.startswith("empty_conversation")
    convs, err = flatten_tree(TREES[0], langs=["de"])
    assert err == "skip"

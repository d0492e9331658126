"""OpenAssistant message trees (oasst1/oasst2 `*_trees.jsonl` exports) flattened into conversations.

Which paths are kept (`options.paths`):
- `all` (default): every root-to-leaf path, cut after its last assistant message, so each
  conversation ends on an assistant turn. Paths that become identical after the cut are kept
  once. Replies are visited best rank first (rank 0 = preferred by reviewers, unranked last).
- `best`: one conversation per tree, following the best-ranked reply at every step.
Deleted messages (`deleted: true`) and messages that failed review (`review_result: false`)
are cut together with their subtree. The conversation id is the message_id of its last turn.
A tree that yields no conversation (no usable assistant reply) becomes one reject row
(`empty_conversation`), so no tree disappears silently. Trees are walked in Python: they are
deeply nested and small (oasst2 has ~13k trees), unlike the flat formats.
"""
from __future__ import annotations

from typing import Any

import orjson

ROLE = {"prompter": "user", "assistant": "assistant", "user": "user"}


def _usable(node: Any) -> bool:
    return isinstance(node, dict) and not node.get("deleted") and node.get("review_result") is not False


def _replies(node: dict) -> list[dict]:
    reps = [r for r in node.get("replies") or [] if _usable(r)]
    # stable sort: ranked replies first by rank, unranked after, original order otherwise
    return sorted(reps, key=lambda r: (r.get("rank") is None, r.get("rank") if r.get("rank") is not None else 0))


def _cut(path: list[dict]) -> list[dict]:
    end = len(path)
    while end and path[end - 1].get("role") != "assistant":
        end -= 1
    return path[:end]


def flatten_tree(tree: Any, paths: str = "all", langs: list[str] | None = None
                 ) -> tuple[list[tuple[list[dict], dict]], str | None]:
    """([(message nodes of one conversation, tree info)], error) for one tree record."""
    if not isinstance(tree, dict):
        return [], "not_an_object: expected an OASST tree object"
    root = tree.get("prompt")
    if not isinstance(root, dict):
        return [], "missing_field: prompt"
    for key in ("text", "role"):
        if not isinstance(root.get(key), str):
            return [], f"missing_field: prompt.{key}"
    if langs and root.get("lang") not in langs:
        return [], "skip"
    info = {"message_tree_id": tree.get("message_tree_id"), "tree_state": tree.get("tree_state"),
            "lang": root.get("lang")}
    if not _usable(root):
        return [], "empty_conversation: the tree's root prompt is deleted or failed review"
    out: list[tuple[list[dict], dict]] = []
    seen: set[str] = set()

    def emit(path: list[dict]) -> None:
        conv = _cut(path)
        if len(conv) < 2:
            return
        key = str(conv[-1].get("message_id")) or str(len(out))
        if key in seen:
            return
        seen.add(key)
        out.append((conv, info))

    if paths == "best":
        path, node = [root], root
        while True:
            reps = _replies(node)
            if not reps:
                break
            node = reps[0]
            path.append(node)
        emit(path)
    else:
        stack: list[tuple[dict, list[dict]]] = [(root, [root])]
        while stack:
            node, path = stack.pop()
            reps = _replies(node)
            if not reps:
                emit(path)
            for r in reversed(reps):  # reversed so the best-ranked reply is walked first
                stack.append((r, path + [r]))
    if not out:
        return [], "empty_conversation: the tree has no usable assistant reply"
    return out, None


def tree_rows(tree: Any, line: int, options: dict, raw_id: str | None = None) -> list[dict]:
    """Canonical row dicts for one tree (or one reject row when the tree yields nothing)."""
    import xxhash

    convs, err = flatten_tree(tree, options.get("paths", "all"), options.get("langs"))
    if err == "skip":
        return []
    if err is not None:
        tid = tree.get("message_tree_id") if isinstance(tree, dict) else None
        return [{"id": str(tid or raw_id or xxhash.xxh3_128_hexdigest(f"line:{line}".encode())),
                 "messages": [], "_line": line, "_error": err}]
    rows = []
    for conv, info in convs:
        bad = next((m for m in conv if ROLE.get(m.get("role")) is None or not isinstance(m.get("text"), str)), None)
        error = None
        if bad is not None:
            error = (f"unknown_role: {bad.get('role')}" if ROLE.get(bad.get("role")) is None
                     else "wrong_type: field 'text': expected string")
        messages = [{"role": ROLE.get(m.get("role"), str(m.get("role"))),
                     "content": m.get("text") if isinstance(m.get("text"), str) else ""} for m in conv]
        meta = dict(info, message_ids=[m.get("message_id") for m in conv])
        rows.append({"id": str(conv[-1].get("message_id")), "messages": messages, "_line": line, "_error": error,
                     "meta": orjson.dumps(meta).decode()})
    return rows

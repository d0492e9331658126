"""Build small pipeline output directories (data/, rejects/, manifest.json) in the engine's layout.

Each test derives its expected verdict from what it breaks here, not from a stored answer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TOPICS = ["the moon", "bread", "rivers", "prime numbers", "chess", "volcanoes", "tea", "bicycles", "owls", "glass"]


def rows(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        answer = f"Here are {i % 5 + 2} facts about {topic}. " + "It is interesting. " * (i % 7 + 1)
        msgs = [{"role": "user", "content": f"Tell me something about {topic} (question {i})."},
                {"role": "assistant", "content": answer}]
        if i % 4 == 0:
            msgs = [{"role": "system", "content": "You are concise."}] + msgs
        if i % 6 == 0:
            msgs += [{"role": "user", "content": "And one more?"}, {"role": "assistant", "content": f"Also: {topic}."}]
        out.append({
            "id": f"r{i:05d}", "messages": msgs, "source": "unit", "meta": "{}",
            "n_tokens": 5 + (i * 3) % 40 + 20 + (i * 7) % 90, "n_label_tokens": 5 + (i * 3) % 40,
            "lang_user": "en", "lang_assistant": "en",
            "dup_cluster_size": 1 + (i % 9 == 0) * (i % 4 + 1),
            "contam_benchmark": None,
            "defect_flags": ["short_answer"] if i % 11 == 0 else [],
        })
    return out


SCHEMA = pa.schema([
    ("id", pa.string()),
    ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("source", pa.string()), ("meta", pa.string()),
    ("n_tokens", pa.int32()), ("n_label_tokens", pa.int32()),
    ("lang_user", pa.string()), ("lang_assistant", pa.string()),
    ("dup_cluster_size", pa.int32()), ("contam_benchmark", pa.string()),
    ("defect_flags", pa.list_(pa.string())),
])


def write_output(out: Path, data: list[dict[str, Any]], rejects: dict[str, int] | None = None,
                 eval_every: int = 5, shard_rows: int = 40) -> Path:
    """Write OUT/data/{train,eval}-NNNNN.parquet, OUT/rejects/seg0-00000.parquet and OUT/manifest.json."""
    rejects = {"exact_duplicate": 4, "empty_output": 2} if rejects is None else rejects
    (out / "data").mkdir(parents=True, exist_ok=True)
    splits = {"train": [r for i, r in enumerate(data) if i % eval_every], "eval": [r for i, r in enumerate(data) if not i % eval_every]}
    files = []
    for split, part in splits.items():
        for k in range(0, max(len(part), 1), shard_rows):
            chunk = part[k:k + shard_rows]
            if not chunk:
                continue
            p = out / "data" / f"{split}-{k // shard_rows:05d}.parquet"
            pq.write_table(pa.Table.from_pylist(chunk, schema=SCHEMA), p)
            files.append(p)
    rej_rows = []
    for reason, n in rejects.items():
        for j in range(n):
            rej_rows.append({"id": f"x-{reason}-{j}", "stage": "01_filter", "reason": reason, "detail": json.dumps({"j": j}),
                             "_file": "input.jsonl", "_line": j + 1,
                             "messages": [{"role": "user", "content": f"rejected {reason} {j}"},
                                          {"role": "assistant", "content": ""}]})
    if rej_rows:
        (out / "rejects").mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rej_rows), out / "rejects" / "seg0-00000.parquet")
    n_rej = sum(rejects.values())
    read = len(data) + n_rej
    manifest = {
        "pipeline": "unit_test", "config_hash": "0" * 16,
        "inputs": [{"path": "input.jsonl", "format": "alpaca", "rows": read}],
        "stages": [{"stage": "00_read", "op": "read", "rows_in": read, "rows_out": read, "rejected": {}},
                   {"stage": "01_filter", "op": "filter", "rows_in": read, "rows_out": len(data), "rejected": dict(rejects)}],
        "rejects_by_stage": {"01_filter": dict(rejects)} if rejects else {},
        "counts": {"read": read, "written": len(data), "rejected": n_rej,
                   "by_split": {k: len(v) for k, v in splits.items()}},
        "files": {"data": [str(p.relative_to(out)) for p in files]},
        "seconds": 1.5,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def data_files(out: Path) -> list[Path]:
    return sorted((out / "data").glob("*.parquet"))

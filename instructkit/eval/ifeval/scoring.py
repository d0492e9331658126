"""IFEval's four scores: prompt-level and instruction-level accuracy, strict and loose.

Strict checks the response as written. Loose forgives the usual wrapping a model adds: it also
accepts the response with its first and/or last line removed and/or with every `*` removed, and an
instruction counts as followed if any of those 8 variants passes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructkit.errors import DataError
from instructkit.eval.ifeval.checkers import check


@dataclass
class IFEvalPrompt:
    key: int | str
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]] = field(default_factory=list)


def load_prompts(path: str | Path) -> list[IFEvalPrompt]:
    """Read IFEval's input_data.jsonl (key, prompt, instruction_id_list, kwargs)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ids = list(row["instruction_id_list"])
                kwargs = list(row.get("kwargs") or [{} for _ in ids])
                out.append(IFEvalPrompt(row["key"], row["prompt"], ids, kwargs))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{line_no}: not an IFEval input row ({exc})") from None
            if len(kwargs) != len(ids):
                raise DataError(f"{path}:{line_no}: {len(ids)} instruction ids but {len(kwargs)} kwargs")
    return out


def loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    base = [response, no_first, no_last, no_both]
    return base + [v.replace("*", "") for v in base]


def follows(prompt: IFEvalPrompt, response: str, loose: bool = False) -> list[bool]:
    """One bool per instruction of `prompt`: is it followed by `response`?"""
    candidates = loose_variants(response) if loose else [response]
    result = []
    for instruction_id, kwargs in zip(prompt.instruction_id_list, prompt.kwargs):
        result.append(any(c.strip() and check(instruction_id, c, kwargs) for c in candidates))
    return result


def score(prompts: list[IFEvalPrompt], responses: list[str]) -> dict[str, Any]:
    """The four IFEval accuracies (0..1) plus per-prompt detail for sample logs."""
    if len(prompts) != len(responses):
        raise DataError(f"IFEval: {len(prompts)} prompts but {len(responses)} responses")
    metrics: dict[str, Any] = {}
    details = []
    for mode in ("strict", "loose"):
        per_prompt = [follows(p, r, loose=(mode == "loose")) for p, r in zip(prompts, responses)]
        n_inst = sum(len(x) for x in per_prompt)
        metrics[f"prompt_level_{mode}_acc"] = sum(all(x) for x in per_prompt) / max(len(per_prompt), 1)
        metrics[f"inst_level_{mode}_acc"] = sum(sum(x) for x in per_prompt) / max(n_inst, 1)
        details.append(per_prompt)
    samples = [
        {"key": p.key, "instruction_id_list": p.instruction_id_list, "strict": s, "loose": lo}
        for p, s, lo in zip(prompts, details[0], details[1])
    ]
    return {"metrics": metrics, "samples": samples}

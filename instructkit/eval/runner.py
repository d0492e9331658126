"""Run tasks against one loaded model and collect a results document (metrics, config, versions).

One function per output type turns task rows into model calls and scores; `evaluate` runs a list
of tasks and returns the JSON-serialisable results that `instructkit eval` writes and `compare`
reads.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from instructkit.errors import DataError
from instructkit.eval.generation import exact_match, generate
from instructkit.eval.model import LoadedModel
from instructkit.eval.multiple_choice import MCItem, evaluate_items, mean_stderr
from instructkit.eval.prompting import ChatPrompter
from instructkit.eval.tasks import RowRenderer, TaskSpec, load_task, read_rows


def mc_items(spec: TaskSpec, data_dir: str | Path | None, limit: int | None) -> list[MCItem]:
    render = RowRenderer(spec)
    items: list[MCItem] = []
    for path in spec.data_files(data_dir):
        for n, row in enumerate(read_rows(path, spec.records_key), 1):
            where = f"{path}:{n}"
            gold = render.field(row, spec.gold, where)
            if isinstance(gold, bool) or not isinstance(gold, (int, str)) or not str(gold).lstrip("-").isdigit():
                raise DataError(f"{where}: field {spec.gold!r} must be the index of the gold choice, got {gold!r}")
            if spec.output_type == "multiple_choice":
                ctx = render(spec.context, row, where)
                choices = render.field(row, spec.choices, where)
                if not isinstance(choices, list) or len(choices) < 2:
                    raise DataError(f"{where}: field {spec.choices!r} must be a list of at least 2 choices")
                item = MCItem([ctx] * len(choices), [spec.target_delimiter + str(c) for c in choices], int(gold),
                              [len(str(c)) for c in choices], row)
            else:
                options = render.field(row, spec.context_options, where)
                if not isinstance(options, list) or len(options) < 2:
                    raise DataError(f"{where}: field {spec.context_options!r} must be a list of at least 2 contexts")
                cont = spec.target_delimiter + render(spec.continuation, row, where)
                # the differing text is the context; acc_norm uses its length in characters
                item = MCItem([str(o) for o in options], [cont] * len(options), int(gold),
                              [len(str(o)) for o in options], row)
            if not 0 <= item.gold < len(item.contexts):
                raise DataError(f"{where}: gold index {item.gold} is out of range for {len(item.contexts)} choices")
            items.append(item)
            if limit is not None and len(items) >= limit:
                return items
    return items


def run_generate_until(spec: TaskSpec, lm: LoadedModel, data_dir: str | Path | None, limit: int | None,
                       batch_size: int, prompter: ChatPrompter, log_samples: bool,
                       max_new_tokens: int | None) -> dict[str, Any]:
    render = RowRenderer(spec)
    files = spec.data_files(data_dir)
    subtasks: dict[str, dict[str, Any]] = {}
    all_correct: list[float] = []
    samples = []
    for path in files:
        rows = read_rows(path, spec.records_key)[:limit] if limit is not None else read_rows(path, spec.records_key)
        prompts, targets = [], []
        for n, row in enumerate(rows, 1):
            text = render(spec.prompt, row, f"{path}:{n}")
            prompts.append(prompter(text) if spec.chat else text)
            targets.append(render(spec.target, row, f"{path}:{n}"))
        outputs = generate(lm.model, lm.tokenizer, prompts, max_new_tokens=max_new_tokens or spec.max_new_tokens,
                           until=spec.until, batch_size=batch_size)
        correct = []
        for prompt, out, target in zip(prompts, outputs, targets):
            ok, pred, gold = exact_match(out, target, spec.extract)
            correct.append(float(ok))
            if log_samples:
                samples.append({"file": path.name, "prompt": prompt, "output": out, "pred": pred, "gold": gold,
                                "exact_match": ok})
        name = path.name.split(".")[0]
        m, se = mean_stderr(correct)
        subtasks[name] = {"exact_match": m, "exact_match_stderr": se, "n": len(correct)}
        all_correct.extend(correct)
    m, se = mean_stderr(all_correct)
    out: dict[str, Any] = {"metrics": {"exact_match": m, "exact_match_stderr": se}, "n": len(all_correct)}
    if len(subtasks) > 1:
        out["subtasks"] = subtasks
    if log_samples:
        out["samples"] = samples
    return out


def run_ifeval(spec: TaskSpec, lm: LoadedModel, data_dir: str | Path | None, limit: int | None, batch_size: int,
               prompter: ChatPrompter, log_samples: bool, max_new_tokens: int | None) -> dict[str, Any]:
    from instructkit.eval.ifeval import load_prompts, score

    prompts = []
    for path in spec.data_files(data_dir):
        prompts.extend(load_prompts(path))
    prompts = prompts[:limit] if limit is not None else prompts
    texts = [prompter(p.prompt) if spec.chat else p.prompt for p in prompts]
    responses = generate(lm.model, lm.tokenizer, texts, max_new_tokens=max_new_tokens or spec.max_new_tokens,
                         until=spec.until, batch_size=batch_size)
    result = score(prompts, responses)
    out: dict[str, Any] = {"metrics": result["metrics"], "n": len(prompts)}
    if log_samples:
        out["samples"] = [dict(s, prompt=p.prompt, response=r) for s, p, r in zip(result["samples"], prompts, responses)]
    return out


def run_task(spec: TaskSpec, lm: LoadedModel, data_dir: str | Path | None = None, limit: int | None = None,
             batch_size: int = 16, prompter: ChatPrompter | None = None, log_samples: bool = False,
             max_new_tokens: int | None = None, heldout: str | Path | None = None) -> dict[str, Any]:
    prompter = prompter or ChatPrompter(lm.tokenizer)
    t0 = time.perf_counter()
    if spec.output_type in ("multiple_choice", "multiple_choice_partial"):
        items = mc_items(spec, data_dir, limit)
        out = evaluate_items(lm.model, lm.tokenizer, items, batch_size=batch_size, log_samples=log_samples)
        if spec.output_type == "multiple_choice_partial":
            out["metrics"] = {k: v for k, v in out["metrics"].items() if not k.startswith("acc_norm")}
    elif spec.output_type == "generate_until":
        out = run_generate_until(spec, lm, data_dir, limit, batch_size, prompter, log_samples, max_new_tokens)
    elif spec.output_type == "ifeval":
        out = run_ifeval(spec, lm, data_dir, limit, batch_size, prompter, log_samples, max_new_tokens)
    else:  # heldout_loss
        from instructkit.eval.heldout import heldout_loss, read_conversations

        source = heldout or (spec.data_files(data_dir)[0] if spec.data else None)
        if source is None:
            raise DataError(f"task {spec.name!r} needs --heldout PIPELINE_OUT (a pipeline output dir with an eval split)")
        convs = read_conversations(source, limit)
        out = heldout_loss(lm.model, lm.tokenizer, convs, prompter.render, batch_size=batch_size,
                           log_samples=log_samples)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def versions() -> dict[str, str]:
    import torch
    import transformers

    try:
        from importlib.metadata import version
        ik = version("instructkit")
    except Exception:  # not installed as a distribution (running from a checkout)
        ik = "dev"
    return {"instructkit": ik, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def evaluate(lm: LoadedModel, tasks: list[str], data_dir: str | Path | None = None, limit: int | None = None,
             batch_size: int = 16, template: str | None = None, system: str | None = None, log_samples: bool = False,
             max_new_tokens: int | None = None, heldout: str | Path | None = None, label: str | None = None,
             progress: Any = None) -> dict[str, Any]:
    """Evaluate `lm` on each task; the results document written by `instructkit eval`."""
    specs = [load_task(t) for t in tasks]
    prompter = ChatPrompter(lm.tokenizer, template=template, system=system)
    results: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    for spec in specs:
        if progress:
            progress(f"{label or lm.name}: {spec.name} ...")
        res = run_task(spec, lm, data_dir, limit, batch_size, prompter, log_samples, max_new_tokens, heldout)
        if "samples" in res:
            samples[spec.name] = res.pop("samples")
        results[spec.name] = res
    doc: dict[str, Any] = {
        "label": label or (Path(lm.adapter).name if lm.adapter else Path(lm.name).name),
        "model": lm.name, "adapter": lm.adapter,
        "config": {"tasks": tasks, "limit": limit, "batch_size": batch_size, "template": prompter.name,
                   "data_dir": str(data_dir) if data_dir else None, "max_new_tokens": max_new_tokens,
                   "heldout": str(heldout) if heldout else None,
                   "dtype": str(next(lm.model.parameters()).dtype).removeprefix("torch.")},
        "versions": versions(),
        "results": results,
    }
    if log_samples:
        doc["samples"] = samples
    return doc

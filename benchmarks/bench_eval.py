"""Evaluator benchmark: multiple-choice items/s vs lm-evaluation-harness, and IFEval scoring time.

    python benchmarks/bench_eval.py [--quick] [--tasks arc_easy,piqa] [--limit N] [--threads T]

Both harnesses score the SAME items with the SAME prompts ("{query}" + " " + choice, BOS first) on
the SAME model object (stories260K by default) in one process, so the ratio compares the harness
overhead and batching strategy. The accuracies are printed side by side; they must be equal.
Reads /work/shared/data (or --data-dir); skips with a message when it is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = Path(os.environ.get("INSTRUCTKIT_EVAL_DATA", REPO.parent / "shared" / "data"))
DEFAULT_MODEL = REPO / "examples" / "models" / "stories260K"


def ours_mc(lm, task: str, data_dir: Path, limit: int, batch_size: int, shared_prefix: bool) -> tuple[float, dict]:
    from instructkit.eval.multiple_choice import evaluate_items
    from instructkit.eval.runner import mc_items
    from instructkit.eval.tasks import load_task

    t0, c0 = time.perf_counter(), time.process_time()
    items = mc_items(load_task(task), data_dir, limit)
    out = evaluate_items(lm.model, lm.tokenizer, items, batch_size=batch_size, shared_prefix=shared_prefix)
    return (time.perf_counter() - t0, time.process_time() - c0), out["metrics"]


def write_subset(tokenizer, data_file: Path, limit: int, max_length: int, workdir: Path) -> tuple[Path, int, int]:
    """The first `limit` items whose every choice fits the model (lm_eval refuses longer continuations)."""
    out = workdir / "mc_eval" / data_file.name
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = skipped = 0
    with open(data_file, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            if kept >= limit:
                break
            row = json.loads(line)
            longest = max(len(tokenizer.encode(row["query"] + " " + c, add_special_tokens=False)) for c in row["choices"])
            if longest + 1 > max_length:
                skipped += 1
                continue
            dst.write(line)
            kept += 1
    return out, kept, skipped


def lm_eval_mc(hflm, task: str, subset: Path, workdir: Path) -> tuple[float, dict]:
    """lm-eval on a task YAML that mirrors ours exactly (same file, same text, same delimiter)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    name = f"ik_bench_{task}"
    (workdir / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {subset}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: query\ndoc_to_choice: choices\n"
        "doc_to_target: gold\ntarget_delimiter: \" \"\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n")
    manager = TaskManager(include_path=str(workdir))
    t0, c0 = time.perf_counter(), time.process_time()
    res = simple_evaluate(model=hflm, tasks=[name], task_manager=manager, num_fewshot=0, log_samples=False,
                          bootstrap_iters=0, verbosity="ERROR")
    elapsed = (time.perf_counter() - t0, time.process_time() - c0)
    metrics = res["results"][name]
    return elapsed, {"acc": metrics["acc,none"], "acc_norm": metrics["acc_norm,none"]}


def bench_ifeval(data_dir: Path) -> None:
    from instructkit.eval.ifeval import load_prompts, score
    from instructkit.eval.ifeval.checkers import _language_detector_factory

    prompts = load_prompts(data_dir / "ifeval" / "input_data.jsonl")
    by_prompt = {}
    with open(data_dir / "ifeval" / "input_response_data_gpt4_20231107_145030.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            by_prompt[row["prompt"]] = row["response"]
    responses = [by_prompt.get(p.prompt, "") for p in prompts]
    t0 = time.perf_counter()
    _language_detector_factory()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = score(prompts, responses)
    elapsed = time.perf_counter() - t0
    m = out["metrics"]
    print(f"\nIFEval scoring, {len(prompts)} GPT-4 responses (strict + loose, 4 scores): {elapsed:.2f} s "
          f"(+ {t_load:.2f} s one-off langdetect profile load)")
    print("  " + ", ".join(f"{k}={100 * v:.2f}" for k, v in m.items()))
    print("  lm_eval's IFEval scorer needs NLTK punkt data, which cannot be downloaded here: not compared.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 items per task")
    ap.add_argument("--tasks", default="arc_easy,arc_challenge,boolq,commonsense_qa,openbook_qa,piqa,copa")
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both harnesses (default 1)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    if not (data_dir / "mc_eval").is_dir():
        print(f"skip: {data_dir}/mc_eval not found (set --data-dir or INSTRUCTKIT_EVAL_DATA)")
        return 0
    limit = 100 if args.quick else args.limit

    import torch

    torch.set_num_threads(args.threads)
    from instructkit.eval.model import load_model

    lm = load_model(args.model)
    try:
        from lm_eval.models.huggingface import HFLM
        hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=args.batch_size, add_bos_token=True,
                    max_length=lm.model.config.max_position_embeddings)
    except ImportError:
        hflm = None
        print("lm_eval is not installed: only our numbers are shown (pip install --no-deps lm_eval ...)")
    print(f"model {args.model}; {limit} items per task; batch size {args.batch_size}; torch threads {args.threads}")
    print("times are wall seconds / CPU seconds of this process (CPU time is steadier on a shared machine)")
    print(f"{'task':<11}{'items':>6}  {'ours wall/cpu':>14} {'ours it/s':>9}  {'plain wall/cpu':>14}  "
          f"{'lm_eval wall/cpu':>16} {'lm_eval it/s':>12}  {'speedup wall/cpu':>16}   acc ours/lm_eval   acc_norm ours/lm_eval")
    tot = {"ours": [0.0, 0.0], "theirs": [0.0, 0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            subset, n, skipped = write_subset(lm.tokenizer, data_dir / "mc_eval" / f"{task}.jsonl", limit,
                                              lm.model.config.max_position_embeddings, Path(tmp))
            if skipped:
                print(f"  ({task}: {skipped} items longer than the model's context skipped for both harnesses)")
            # warm-up so neither side pays first-call costs
            ours_mc(lm, task, Path(tmp), 4, args.batch_size, True)
            t_ours, m_ours = ours_mc(lm, task, Path(tmp), n, args.batch_size, True)
            t_plain, m_plain = ours_mc(lm, task, Path(tmp), n, args.batch_size, False)
            assert abs(m_plain["acc"] - m_ours["acc"]) < 1e-9, "shared-prefix and plain scoring disagree"
            line = (f"{task:<11}{n:>6}  {t_ours[0]:>6.2f}/{t_ours[1]:<7.2f} {n / t_ours[0]:>9.1f}  "
                    f"{t_plain[0]:>6.2f}/{t_plain[1]:<7.2f}")
            if hflm is not None:
                t_th, m_th = lm_eval_mc(hflm, task, subset, Path(tmp))
                for k in (0, 1):
                    tot["ours"][k] += t_ours[k]
                    tot["theirs"][k] += t_th[k]
                same = lambda a, b: "=" if abs(a - b) < 1e-9 else "DIFFER"  # noqa: E731
                line += (f"  {t_th[0]:>7.2f}/{t_th[1]:<8.2f} {n / t_th[0]:>12.1f}  "
                         f"{t_th[0] / t_ours[0]:>7.2f}x/{t_th[1] / t_ours[1]:.2f}x    "
                         f"{100 * m_ours['acc']:.2f}/{100 * m_th['acc']:.2f} {same(m_ours['acc'], m_th['acc'])}   "
                         f"{100 * m_ours['acc_norm']:.2f}/{100 * m_th['acc_norm']:.2f} "
                         f"{same(m_ours['acc_norm'], m_th['acc_norm'])}")
            print(line, flush=True)
    if tot["ours"][0]:
        print(f"overall speedup vs lm_eval: wall {tot['theirs'][0] / tot['ours'][0]:.2f}x, "
              f"CPU {tot['theirs'][1] / tot['ours'][1]:.2f}x")
    bench_ifeval(data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

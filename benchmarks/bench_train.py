"""Benchmark: instructkit's LoRA trainer vs PEFT + TRL SFTTrainer, same models, data and settings, CPU.

    python benchmarks/bench_train.py            # ~25M-param Llama + stories260K, a few minutes
    python benchmarks/bench_train.py --quick    # smaller slices, about a minute

Data: the first conversations of the original Stanford Alpaca (../shared/data/alpaca), formatted as
"User: ...\\nAssistant: ..." and tokenized once with the stories260K tokenizer (vocab 512), prompt
masked, answer + EOS trained. Both trainers get exactly these token ids and labels.

Peers, each in its own process (so peak RSS is per trainer):
- `instructkit`: our loop (packs to max_length, loss heads only on label positions);
- `trl`: PEFT + TRL SFTTrainer with its defaults (padding per batch, no packing);
- `trl-packed`: PEFT + TRL SFTTrainer with `packing=True` (BFD, padding-free position_ids).
Same LoRA (r, alpha, all-linear), lr, cosine schedule, warmup share, clipping, fp32, 1 epoch, no
gradient checkpointing (TRL's default turns it on; we turn it off to match), and about the same
tokens per optimizer step. "Held-out loss" is measured with one function for all adapters.
Achieved FLOP/s uses 4*N per token (forward 2N + input-gradient 2N; the frozen base gets no weight
gradients), N = weights in the model's matmuls, as a share of this CPU's measured torch.mm peak.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alpaca"
STORIES = REPO / "examples" / "models" / "stories260K"
MAX_LENGTH = 512
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}
SEED = 0


# ------------------------------------------------------------------------------------------------
# Setup (parent process)
# ------------------------------------------------------------------------------------------------

def build_dataset(root: Path, n_train: int, n_eval: int) -> dict:
    """Tokenize Alpaca rows into a pipeline-shaped dir (data/train, data/eval, manifest with a passed gate)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(STORIES)
    rows = []
    with gzip.open(DATA / "alpaca_en_original.part-00-of-03.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["output"].strip():
                rows.append(r)
            if len(rows) >= n_train + n_eval:
                break
    ids_all, labels_all = [], []
    for r in rows:
        prompt = f"User: {r['instruction']}" + (f"\n{r['input']}" if r["input"] else "") + "\nAssistant:"
        p = tok(prompt, add_special_tokens=False).input_ids
        a = tok(" " + r["output"], add_special_tokens=False).input_ids + [tok.eos_token_id]
        ids = ([tok.bos_token_id] + p + a)[:MAX_LENGTH]
        labels = ([-100] * (1 + len(p)) + a)[:MAX_LENGTH]
        ids_all.append(ids)
        labels_all.append(labels)
    (root / "data").mkdir(parents=True)
    for name, sl in (("eval-00000", slice(0, n_eval)), ("train-00000", slice(n_eval, None))):
        table = pa.table({"input_ids": ids_all[sl], "labels": labels_all[sl]})
        pq.write_table(table, root / "data" / f"{name}.parquet")
    (root / "manifest.json").write_text(json.dumps({"gate": {"passed": True}, "note": "benchmark data"}))
    train_ids = ids_all[n_eval:]
    return {"conversations": len(train_ids), "tokens": sum(map(len, train_ids)),
            "label_tokens": sum(sum(x != -100 for x in y) for y in labels_all[n_eval:]),
            "mean_len": round(sum(map(len, train_ids)) / len(train_ids), 1)}


def build_small_llama(path: Path, hidden: int, layers: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    cfg = LlamaConfig(vocab_size=512, hidden_size=hidden, intermediate_size=int(hidden * 8 / 3) // 8 * 8,
                      num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                      max_position_embeddings=MAX_LENGTH, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(cfg).save_pretrained(path)


def mm_peak_flops(n: int = 1024, seconds: float = 3.0) -> float:
    """Best observed fp32 torch.mm FLOP/s on this CPU (same thread count as the trainers)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best


# ------------------------------------------------------------------------------------------------
# Workers (one process per trainer run)
# ------------------------------------------------------------------------------------------------

def matmul_params(model) -> int:
    """Weights that take part in matmuls per token: every Linear/Conv1D plus the output head."""
    from instructkit.train.lora import is_linear_like

    n = sum(m.weight.numel() for m in model.modules() if is_linear_like(m))
    head = model.get_output_embeddings()
    if head is not None and not any(head is m for m in model.modules() if is_linear_like(m)):
        n += head.weight.numel()
    return n


def heldout_loss(model, data_dir: Path) -> float:
    import torch

    from instructkit.train.data import load_dataset_dir
    from instructkit.train.loop import evaluate, loss_full_logits

    ds = load_dataset_dir(data_dir, MAX_LENGTH, pack=False)
    return evaluate(model, ds.eval, 8, loss_full_logits, torch.device("cpu"), None, 0)


def worker_ours(args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from instructkit.train.adapter_io import load_adapter
    from instructkit.train.config import LoraSettings, TrainConfig, TrainSettings
    from instructkit.train.loop import train

    cfg = TrainConfig(model=args.model, data=Path(args.data), output_dir=Path(args.out),
                      lora=LoraSettings(**LORA),
                      train=TrainSettings(max_length=MAX_LENGTH, batch_size=args.rows_per_step, epochs=1, lr=args.lr,
                                          warmup_ratio=0.05, max_grad_norm=1.0, seed=SEED, resume=False,
                                          precision="fp32", device="cpu"))
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(cfg, show_progress=False)  # includes data + model load, final eval, plot, saving
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    n_mm = matmul_params(base)
    model = load_adapter(base, result.adapter_dir).eval()
    k = max(1, len(result.losses) // 10)
    return {"steps": result.steps, "tokens": result.tokens, "loop_s": result.seconds, "wall_s": wall, "cpu_s": cpu,
            "final_train_loss": sum(result.losses[-k:]) / k, "heldout_loss": heldout_loss(model, Path(args.data)),
            "matmul_params": n_mm}


def worker_trl(args: argparse.Namespace, packed: bool) -> dict:
    import pyarrow.parquet as pq
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    table = pq.read_table(Path(args.data) / "data" / "train-00000.parquet")
    train_ds = Dataset.from_dict({"input_ids": table.column("input_ids").to_pylist(),
                                  "labels": table.column("labels").to_pylist()})
    n_tokens = sum(len(x) for x in train_ds["input_ids"])
    tok = AutoTokenizer.from_pretrained(STORIES)
    tok.pad_token = tok.eos_token
    torch.manual_seed(SEED)
    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    n_mm = matmul_params(base)
    model = get_peft_model(base, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                            target_modules=LORA["target_modules"], task_type="CAUSAL_LM"))
    per_step = args.rows_per_step if packed else args.seqs_per_step
    steps = -(-len(train_ds) // per_step)
    conf = SFTConfig(output_dir=args.out, per_device_train_batch_size=per_step, num_train_epochs=1,
                     learning_rate=args.lr, lr_scheduler_type="cosine", warmup_steps=int(0.05 * steps + 0.999),
                     max_grad_norm=1.0, weight_decay=0.0, logging_steps=1, save_strategy="no", report_to=[],
                     seed=SEED, max_length=MAX_LENGTH, packing=packed, use_cpu=True, bf16=False, fp16=False,
                     dataloader_num_workers=0, disable_tqdm=True,
                     # TRL turns gradient checkpointing on by default; ours is off by default. Same
                     # setting on both sides, else TRL pays ~1/3 extra compute for memory it saves.
                     gradient_checkpointing=False)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = SFTTrainer(model=model, args=conf, train_dataset=train_ds, processing_class=tok)
    out = trainer.train()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    k = max(1, len(losses) // 10)
    model.eval()
    return {"steps": trainer.state.global_step, "tokens": n_tokens, "loop_s": out.metrics["train_runtime"],
            "wall_s": wall, "cpu_s": cpu, "final_train_loss": sum(losses[-k:]) / k,
            "heldout_loss": heldout_loss(model, Path(args.data)), "matmul_params": n_mm}


def run_worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.worker == "instructkit":
        res = worker_ours(args)
    else:
        res = worker_trl(args, packed=args.worker == "trl-packed")
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------

def spawn(kind: str, model: Path, data: Path, out: Path, rows_per_step: int, seqs_per_step: int, lr: float,
          threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--model", str(model), "--data", str(data), "--out", str(out),
           "--rows-per-step", str(rows_per_step), "--seqs-per-step", str(seqs_per_step), "--lr", str(lr),
           "--threads", str(threads)]
    env = {**os.environ, "INSTRUCTKIT_QUIET": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr or proc.stdout)[-3000:]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(line[len("RESULT "):])


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", choices=["instructkit", "trl", "trl-packed"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--rows-per-step", type=int, default=4, help=argparse.SUPPRESS)
    ap.add_argument("--seqs-per-step", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--lr", type=float, default=1e-3, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=max(1, min(os.cpu_count() or 1, 8)))
    ap.add_argument("--peers", default="instructkit,trl,trl-packed", help="comma list of trainers to run")
    ap.add_argument("--json", help="also write all results to this JSON file")
    ap.add_argument("--models", default="stories260K,llama-25M", help="comma list: stories260K, llama-25M")
    args = ap.parse_args()
    if args.worker:
        run_worker(args)
        return 0

    if not DATA.exists():
        print(f"skip: {DATA} not found (the benchmark reads real Alpaca data from ../shared/data)")
        return 0
    try:
        import trl  # noqa: F401
        import peft  # noqa: F401
    except ImportError as exc:
        print(f"skip: {exc.name} is not installed (pip install peft trl)")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    peers = args.peers.split(",")
    # (label, model builder or path, conversations, lr)
    setups = [("stories260K", STORIES, 240 if args.quick else 480, 3e-3),
              ("llama-25M", ("build", 512, 8), 48 if args.quick else 64, 1e-3)]
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        tmp = Path(tmp)
        peak = mm_peak_flops()
        print(f"torch {torch.__version__}, {args.threads} threads; torch.mm fp32 peak {peak / 1e9:.1f} GFLOP/s")
        results = {"mm_peak_gflops": round(peak / 1e9, 2), "threads": args.threads, "runs": {}}
        for label, model_spec, n_conv, lr in [s for s in setups if s[0] in args.models.split(",")]:
            if isinstance(model_spec, tuple):
                model_dir = tmp / label
                build_small_llama(model_dir, model_spec[1], model_spec[2])
            else:
                model_dir = model_spec
            data_dir = tmp / f"data-{label}"
            info = build_dataset(data_dir, n_conv, 32)
            # about the same tokens per optimizer step: ours packs `rows` rows of 512 tokens
            rows = 4
            seqs = max(1, round(rows * MAX_LENGTH / info["mean_len"]))
            print(f"\n== {label}: {info['conversations']} conversations, {info['tokens']:,} tokens "
                  f"(mean {info['mean_len']}), {rows} packed rows/step vs {seqs} sequences/step, lr {lr}")
            runs = {}
            for kind in peers:
                r = spawn(kind, model_dir, data_dir, tmp / f"out-{label}-{kind}", rows, seqs, lr, args.threads)
                if "error" in r:
                    print(f"{kind:<12} FAILED {r['error']}")
                    runs[kind] = r
                    continue
                r["tok_s"] = r["tokens"] / r["loop_s"]
                r["tok_per_cpu_s"] = r["tokens"] / r["cpu_s"]
                r["flops_frac"] = 4 * r["matmul_params"] * r["tok_s"] / peak
                runs[kind] = r
                print(f"{kind:<12} steps {r['steps']:>4}  {r['tok_s']:>9,.0f} tok/s  loop {r['loop_s']:6.1f}s  "
                      f"wall {r['wall_s']:6.1f}s  {r['tok_per_cpu_s']:>7,.0f} tok/CPU-s  peak RSS {r['peak_rss_mib']:7.0f} MiB  "
                      f"train loss {r['final_train_loss']:.4f}  held-out {r['heldout_loss']:.4f}  "
                      f"FLOP/s {100 * r['flops_frac']:.1f}% of mm peak")
            ours = runs.get("instructkit")
            for kind in peers:
                other = runs.get(kind)
                if kind == "instructkit" or not ours or not other or "error" in other or "error" in ours:
                    continue
                print(f"ratio instructkit/{kind}: tokens/s {ours['tok_s'] / other['tok_s']:.2f}x, "
                      f"tokens/CPU-s {ours['tok_per_cpu_s'] / other['tok_per_cpu_s']:.2f}x, "
                      f"wall {other['wall_s'] / ours['wall_s']:.2f}x faster, "
                      f"peak RSS {ours['peak_rss_mib'] / other['peak_rss_mib']:.2f}x, "
                      f"held-out loss {100 * (ours['heldout_loss'] / other['heldout_loss'] - 1):+.2f}%, "
                      f"final train loss {100 * (ours['final_train_loss'] / other['final_train_loss'] - 1):+.2f}%")
            results["runs"][label] = {"data": info, **runs}
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

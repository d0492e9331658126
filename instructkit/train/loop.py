"""THE training loop. Read it top to bottom: `train()` is the whole story, the helpers below it
are the details.

What happens, in order:
1. pick the device (cuda, mps, cpu) and the precision (bf16/fp16 autocast on CUDA, fp32 elsewhere);
2. read the pipeline's output (refusing data without a passed quality gate unless forced);
3. load the base model, freeze it, add LoRA layers (seeded, so two runs start identical);
4. AdamW over the LoRA weights only, linear warmup then cosine decay;
5. resume from the newest checkpoint when there is one (weights, optimizer, schedule, RNG, step);
6. each step: `grad_accum` micro-batches; every micro-batch's summed token loss is divided by the
   label-token count of the WHOLE step, so k micro-batches of b rows give the same gradient as one
   batch of k*b rows; clip, step, log; now and then an eval loss and a checkpoint;
7. save the adapter in PEFT's format, the JSONL log and a loss-curve PNG (and a merged model).

Data order is a pure function of (seed, epoch, position): micro-batch i of the run is always the
same rows, so resuming needs only the step number, and an interrupted run continues exactly.
"""
from __future__ import annotations

import functools
import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from instructkit.errors import ConfigError, DataError
from instructkit.progress import progress
from instructkit.train.adapter_io import add_lora, load_adapter_weights, save_adapter, save_merged
from instructkit.train.config import TrainConfig
from instructkit.train.data import IGNORE, Rows, collate, load_dataset_dir
from instructkit.train.lora import trainable_parameters


@dataclass
class TrainResult:
    adapter_dir: Path
    log_path: Path
    plot_path: Path | None
    steps: int
    losses: list[float] = field(default_factory=list)  # per optimizer step, this process only
    eval_loss: float | None = None
    tokens: int = 0
    seconds: float = 0.0
    data_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def train(config: TrainConfig, *, stop_after_steps: int | None = None, show_progress: bool = True) -> TrainResult:
    """Train a LoRA adapter as `config` says. `stop_after_steps` ends this call early (an
    "interruption", for testing resume): the schedule still follows the full run."""
    t = config.train
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Device and precision.
    device = pick_device(t.device)
    amp_dtype = pick_autocast_dtype(t.precision, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None

    # 2. Data.
    data = load_dataset_dir(config.data, t.max_length, pack=t.pack, force=config.force)
    rows = data.train
    stream = MicroBatchStream(len(rows), t.batch_size, t.seed)
    micro_per_epoch = stream.per_epoch
    total_steps = t.max_steps or max(1, math.ceil(t.epochs * micro_per_epoch / t.grad_accum))
    warmup = t.warmup_steps if t.warmup_steps is not None else math.ceil(t.warmup_ratio * total_steps)

    # 3. Model: frozen base + LoRA, deterministic init.
    seed_everything(t.seed)
    model = load_base_model(config.model)
    check_vocabulary(rows, data.eval, model, config)
    add_lora(model, config.lora)
    model.to(device)
    if t.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    pad_id = model.config.pad_token_id if isinstance(model.config.pad_token_id, int) else 0
    forward_loss = pick_loss_function(model, collate(rows, stream.rows(0), pad_id), device)

    # 4. Optimizer and schedule.
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=t.lr, betas=tuple(t.adam_betas), eps=t.adam_eps,
                                  weight_decay=t.weight_decay, foreach=True)
    schedule = functools.partial(warmup_cosine, warmup=warmup, total=total_steps, min_ratio=t.min_lr_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    # 5. Resume.
    log_path = out / "train_log.jsonl"
    start_step, tokens_before = 0, 0
    checkpoint = latest_checkpoint(out) if t.resume else None
    if checkpoint is not None:
        start_step, tokens_before = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler)
        truncate_log(log_path, start_step)
    elif log_path.exists():
        log_path.unlink()
    if start_step >= total_steps:
        print(f"{checkpoint}: already at step {start_step} of {total_steps}; nothing to train", file=sys.stderr)

    # 6. The loop.
    result = TrainResult(adapter_dir=out / "adapter", log_path=log_path, plot_path=None, steps=start_step,
                         data_stats={"train": rows.stats, "eval": data.eval.stats if data.eval else None})
    bar = progress("train", unit="step", total=total_steps, disable=not show_progress, initial=start_step)
    began = time.perf_counter()
    tokens_seen = 0  # by this process (for tok/s); the log counts from the run's start
    with log_path.open("a") as log:
        for step in range(start_step, total_steps):
            micro_batches = [collate(rows, stream.rows(step * t.grad_accum + j), pad_id) for j in range(t.grad_accum)]
            loss, n_tokens = accumulate_gradients(model, micro_batches, forward_loss, device, amp_dtype, scaler)
            if scaler is not None:
                scaler.unscale_(optimizer)
            grad_norm = nn.utils.clip_grad_norm_(params, t.max_grad_norm or float("inf"))
            lr = scheduler.get_last_lr()[0]
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            tokens_seen += n_tokens
            elapsed = time.perf_counter() - began
            result.losses.append(loss)
            result.steps = step + 1
            done = step + 1
            if done % t.log_every == 0 or done == total_steps:
                write_log(log, {"step": done, "loss": round(loss, 6), "lr": lr, "grad_norm": float(grad_norm),
                                "epoch": round(done * t.grad_accum / micro_per_epoch, 4),
                                "tokens": tokens_before + tokens_seen, "tok_s": round(tokens_seen / elapsed, 1)})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_seen / elapsed:,.0f}")
            if data.eval is not None and t.eval_every and done % t.eval_every == 0 and done < total_steps:
                write_log(log, {"step": done, "eval_loss": evaluate(model, data.eval, t.batch_size, forward_loss,
                                                                    device, amp_dtype, pad_id, t.eval_max_batches)})
            if t.save_every and done % t.save_every == 0 and done < total_steps:
                save_checkpoint(out, done, model, optimizer, scheduler, scaler, config.model, t.keep_checkpoints,
                                tokens_before + tokens_seen)
            if stop_after_steps is not None and done - start_step >= stop_after_steps and done < total_steps:
                save_checkpoint(out, done, model, optimizer, scheduler, scaler, config.model, t.keep_checkpoints,
                                tokens_before + tokens_seen)
                break
        result.seconds = time.perf_counter() - began
        result.tokens = tokens_seen
        finished = result.steps >= total_steps
        if finished and data.eval is not None:
            result.eval_loss = evaluate(model, data.eval, t.batch_size, forward_loss, device, amp_dtype, pad_id,
                                        t.eval_max_batches)
            write_log(log, {"step": result.steps, "eval_loss": result.eval_loss})
    bar.close()

    # 7. Outputs.
    result.plot_path = plot_loss_curve(log_path, out / "loss.png")
    if finished:
        if result.steps > start_step:  # a final checkpoint makes re-running a finished recipe a no-op
            save_checkpoint(out, result.steps, model, optimizer, scheduler, scaler, config.model,
                            t.keep_checkpoints, tokens_before + tokens_seen)
        save_adapter(model, result.adapter_dir, base_model_name_or_path=config.model)
        if t.merge:
            save_merged(model, out / "merged", tokenizer=load_tokenizer_or_none(config.model))
    return result


# ---------------------------------------------------------------------------------------------
# One step's gradients and the loss.
# ---------------------------------------------------------------------------------------------

def accumulate_gradients(model: nn.Module, micro_batches: list[dict[str, torch.Tensor]], forward_loss: Any,
                         device: torch.device, amp_dtype: torch.dtype | None,
                         scaler: torch.amp.GradScaler | None = None) -> tuple[float, int]:
    """Backward over all micro-batches of one step; return (mean token loss, real tokens).

    Dividing each micro-batch's SUM of token losses by the label-token count of the whole step
    makes the accumulated gradient equal to that of one big batch, whatever the micro-batches'
    own token counts (a plain mean per micro-batch would over-weight short ones).
    """
    n_label = int(sum(int((mb["targets"] != IGNORE).sum()) for mb in micro_batches))
    n_real = 0
    total = 0.0
    for mb in micro_batches:
        mb = {k: v.to(device, non_blocking=True) for k, v in mb.items()}
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss_sum = forward_loss(model, mb)
        scaled = loss_sum / max(n_label, 1)
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += float(loss_sum.detach())
        n_real += int(mb["n_tokens"])
    return total / max(n_label, 1), n_real


def loss_full_logits(model: nn.Module, mb: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed cross-entropy from the model's own logits (works for any causal LM)."""
    logits = model(input_ids=mb["input_ids"], position_ids=mb["position_ids"], use_cache=False).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), mb["targets"].flatten(), ignore_index=IGNORE, reduction="sum")


def loss_label_positions_only(model: nn.Module, mb: dict[str, torch.Tensor]) -> torch.Tensor:
    """Same sum, but the output head runs only where there is a label.

    Prompt tokens carry no loss, so projecting them onto the vocabulary is wasted work (a large
    share of the compute for big vocabularies); this is the same number as `loss_full_logits`.
    """
    body = getattr(model, model.base_model_prefix)
    hidden = body(input_ids=mb["input_ids"], position_ids=mb["position_ids"], use_cache=False).last_hidden_state
    keep = mb["targets"] != IGNORE
    logits = model.get_output_embeddings()(hidden[keep])
    return F.cross_entropy(logits.float(), mb["targets"][keep], reduction="sum")


@torch.no_grad()
def pick_loss_function(model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device) -> Any:
    """Use the label-positions-only loss when it reproduces the full-logits loss on real data.

    Some models post-process logits (soft-capping, scaling); the check catches those instead of
    a list of model names, and falls back to the always-correct path.
    """
    mb = {k: v.to(device) for k, v in batch.items()}
    was_training = model.training
    model.eval()
    try:
        fast = loss_label_positions_only(model, mb)
        full = loss_full_logits(model, mb)
        ok = torch.allclose(fast, full, rtol=1e-4, atol=1e-4)
    except (AttributeError, TypeError):
        ok = False
    finally:
        model.train(was_training)
    return loss_label_positions_only if ok else loss_full_logits


@torch.no_grad()
def evaluate(model: nn.Module, rows: Rows, batch_size: int, forward_loss: Any, device: torch.device,
             amp_dtype: torch.dtype | None, pad_id: int, max_batches: int | None = None) -> float:
    """Mean token loss over the eval rows (in order; no dropout)."""
    model.eval()
    total, n = 0.0, 0
    starts = list(range(0, len(rows), batch_size))[: max_batches or None]
    for s in starts:
        mb = {k: v.to(device) for k, v in collate(rows, list(range(s, min(s + batch_size, len(rows)))), pad_id).items()}
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            total += float(forward_loss(model, mb))
        n += int((mb["targets"] != IGNORE).sum())
    model.train()
    return round(total / max(n, 1), 6)


# ---------------------------------------------------------------------------------------------
# Data order, schedule, setup.
# ---------------------------------------------------------------------------------------------

class MicroBatchStream:
    """Micro-batch i -> row indices, as a pure function of (seed, i): epochs are seeded shuffles."""

    def __init__(self, n_rows: int, batch_size: int, seed: int) -> None:
        self.n_rows, self.batch_size, self.seed = n_rows, batch_size, seed
        self.per_epoch = math.ceil(n_rows / batch_size)
        self._epoch, self._perm = -1, np.arange(0)

    def rows(self, i: int) -> list[int]:
        epoch, j = divmod(i, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n_rows)
        return self._perm[j * self.batch_size:(j + 1) * self.batch_size].tolist()


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """LR multiplier: linear from 0 over `warmup` steps, then cosine down to `min_ratio`."""
    if step < warmup:
        return step / max(1, warmup)
    progress_ = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * max(0.0, 0.5 * (1 + math.cos(math.pi * progress_)))


def pick_device(name: str) -> torch.device:
    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"train.device is {name!r} but CUDA is not available here (use auto or cpu)")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32. Autocast only on CUDA: CPU bf16 autocast is slower on most CPUs."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and precision == "fp16":
        raise ConfigError("train.precision fp16 needs a GPU; use fp32 (or bf16) on CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_base_model(name_or_path: str) -> nn.Module:
    """The base model in fp32 (LoRA math and the optimizer state stay fp32; autocast does the rest)."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32)
    except OSError as exc:
        raise ConfigError(f"model: cannot load {name_or_path!r} ({str(exc).splitlines()[0]})") from None


def check_vocabulary(train_rows: Rows, eval_rows: Rows | None, model: nn.Module, config: TrainConfig) -> None:
    """Token ids beyond the model's vocabulary mean the data was tokenized for another model."""
    vocab = model.get_input_embeddings().num_embeddings
    top = max(int(x.max()) for r in (train_rows, eval_rows) if r is not None for x in r.input_ids if len(x))
    if top >= vocab:
        raise DataError(f"{config.data}: token id {top} is outside {config.model}'s vocabulary of {vocab}; "
                        f"the dataset was tokenized with a different tokenizer than the model's")


def load_tokenizer_or_none(name_or_path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Checkpoints, log, plot.
# ---------------------------------------------------------------------------------------------

def save_checkpoint(out: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any, base_model: str, keep: int, tokens: int = 0) -> Path:
    """Adapter (PEFT format, usable on its own) + everything needed to continue exactly."""
    root = out / "checkpoints"
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_adapter(model, tmp, base_model_name_or_path=base_model)
    state = {
        "step": step,
        "tokens": tokens,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }
    torch.save(state, tmp / "trainer_state.pt")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted(p for p in (out / "checkpoints").glob("step-*") if (p / "trainer_state.pt").exists())
    return found[-1] if found else None


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any) -> tuple[int, int]:
    """Restore everything `save_checkpoint` wrote; return (step, tokens trained so far)."""
    try:
        load_adapter_weights(model, path)
    except DataError as exc:
        raise DataError(f"{path}: this checkpoint does not match the current config (LoRA settings or model "
                        f"changed?); use --no-resume or another output_dir ({exc})") from None
    state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(state["step"]), int(state.get("tokens", 0))


def write_log(log: Any, entry: dict[str, Any]) -> None:
    log.write(json.dumps(entry) + "\n")
    log.flush()


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_loss_curve(log_path: Path, png_path: Path) -> Path | None:
    """Train (and eval) loss against step, as a PNG; no display needed (Agg backend)."""
    if not log_path.exists():
        return None
    entries = read_log(log_path)
    train_pts = [(e["step"], e["loss"]) for e in entries if "loss" in e]
    eval_pts = [(e["step"], e["eval_loss"]) for e in entries if "eval_loss" in e]
    if not train_pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(*zip(*train_pts), label="train loss", linewidth=1.2)
    if eval_pts:
        ax.plot(*zip(*eval_pts), "o-", label="eval loss", markersize=4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean per label token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return png_path

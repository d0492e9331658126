"""Training data from a pipeline output directory, as packed rows ready to batch.

What a pipeline leaves behind, in order of preference:
- `OUT/packed/*.parquet`: rows already packed by the `pack` step (`input_ids`, `labels`, and
  `position_ids` or `seq_lengths` telling where each packed sequence starts);
- `OUT/data/*.parquet`: one tokenized conversation per row (`input_ids`, `labels` with -100 on
  tokens that are not trained); we pack them here (first-fit decreasing) or pad them.
Files whose name starts with `eval` are the eval split; the rest are training data.

The trainer refuses a dataset whose `manifest.json` does not record a passed quality gate unless
forced, because training on data that failed its checks is how silent SFT bugs ship.

Sequences inside a packed row stay apart through `position_ids` that restart at 0 for each
sequence: transformers builds a block-diagonal causal mask from them (when no attention_mask is
given), so tokens never attend across sequence boundaries, and the loss never asks the last token
of one sequence to predict the first token of the next (see `collate`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from instructkit.errors import DataError, GateFailed

IGNORE = -100


@dataclass
class Rows:
    """Rows to train on: each row is one or more whole sequences, at most `max_length` tokens."""

    input_ids: list[np.ndarray]
    labels: list[np.ndarray]
    position_ids: list[np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_tokens(self) -> int:
        return int(sum(len(x) for x in self.input_ids))


@dataclass
class Dataset:
    train: Rows
    eval: Rows | None
    source: str  # "packed" or "data"
    manifest: dict[str, Any] | None


def check_gate(out_dir: Path, force: bool) -> dict[str, Any] | None:
    """Return the manifest; raise unless it records a passed gate (or `force`)."""
    path = out_dir / "manifest.json"
    if not path.exists():
        if force:
            return None
        raise GateFailed(f"{path}: not found, so no passed quality gate is recorded; run the pipeline with a "
                         f"quality_gate step, or train anyway with --force (train config: force: true)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    gate = manifest.get("gate") if isinstance(manifest, dict) else None
    passed = isinstance(gate, dict) and gate.get("passed") is True
    if not passed and not force:
        state = "no 'gate' entry" if not isinstance(gate, dict) else f"gate.passed = {gate.get('passed')!r}"
        raise GateFailed(f"{path}: the dataset has not passed its quality gate ({state}); fix the data, "
                         f"or train anyway with --force (train config: force: true)")
    return manifest


def load_dataset_dir(out_dir: str | Path, max_length: int, pack: bool = True, force: bool = False) -> Dataset:
    """Read a pipeline output directory into packed train (and eval) rows."""
    out = Path(out_dir)
    if not out.is_dir():
        raise DataError(f"{out}: dataset directory not found (expected a pipeline output dir with data/ or packed/)")
    manifest = check_gate(out, force)
    packed = sorted((out / "packed").glob("*.parquet"))
    if packed:
        train_files, eval_files = _split_files(packed)
        train = _read_packed(train_files, max_length)
        evalr = _read_packed(eval_files, max_length) if eval_files else None
        unpacked_eval = _split_files(sorted((out / "data").glob("*.parquet")))[1]
        if evalr is None and unpacked_eval:  # the pack step may pack only the train split
            evalr = _read_unpacked(unpacked_eval, max_length, pack)
        source = "packed"
    else:
        files = sorted((out / "data").glob("*.parquet"))
        if not files:
            raise DataError(f"{out}: no Parquet files in packed/ or data/; run a pipeline that ends with "
                            f"template + tokenize (+ pack) steps first")
        train_files, eval_files = _split_files(files)
        train = _read_unpacked(train_files, max_length, pack)
        evalr = _read_unpacked(eval_files, max_length, pack) if eval_files else None
        source = "data"
    if len(train) == 0:
        raise DataError(f"{out}: no training rows with at least one label token")
    return Dataset(train=train, eval=evalr, source=source, manifest=manifest)


def _split_files(files: list[Path]) -> tuple[list[Path], list[Path]]:
    evals = [f for f in files if f.name.startswith("eval")]
    return [f for f in files if f not in evals], evals


def _list_column(table: pa.Table, name: str, path: str) -> list[np.ndarray]:
    """A list<int> column as one int64 array per row, without a Python loop over tokens."""
    col = table.column(name).combine_chunks()
    if not pa.types.is_list(col.type) and not pa.types.is_large_list(col.type):
        raise DataError(f"{path}: column '{name}' must be a list of integers, got {col.type}")
    if col.null_count:
        raise DataError(f"{path}: column '{name}' has {col.null_count} null rows")
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = col.offsets.to_numpy()
    start = offsets[0]
    return np.split(flat, offsets[1:-1] - start) if len(col) else []


def _read(files: list[Path], need: list[str], optional: list[str]) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {c: [] for c in need + optional}
    for f in files:
        schema = pq.read_schema(f)
        missing = [c for c in need if c not in schema.names]
        if missing:
            raise DataError(f"{f}: missing column '{missing[0]}' (needs {', '.join(need)}; is the tokenize step "
                            f"in the pipeline?)")
        cols = need + [c for c in optional if c in schema.names]
        table = pq.read_table(f, columns=cols)
        for c in cols:
            out[c].extend(_list_column(table, c, str(f)))
    return out


def _positions_from_lengths(lengths: np.ndarray, total: int, where: str) -> np.ndarray:
    if int(lengths.sum()) != total or (lengths <= 0).any():
        raise DataError(f"{where}: seq_lengths {lengths.tolist()} do not add up to the row's {total} tokens")
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - starts


def _read_packed(files: list[Path], max_length: int) -> Rows:
    cols = _read(files, ["input_ids", "labels"], ["position_ids", "seq_lengths"])
    ids, labels = cols["input_ids"], cols["labels"]
    positions = []
    for i, (x, y) in enumerate(zip(ids, labels)):
        where = f"{files[0].parent}: row {i}"
        if len(x) != len(y):
            raise DataError(f"{where}: input_ids has {len(x)} tokens but labels has {len(y)}")
        if len(x) > max_length:
            raise DataError(f"{where}: packed row has {len(x)} tokens > train.max_length {max_length}; "
                            f"raise train.max_length or pack to a smaller max_length")
        if cols["position_ids"]:
            pos = cols["position_ids"][i]
            if len(pos) != len(x):
                raise DataError(f"{where}: position_ids has {len(pos)} entries for {len(x)} tokens")
        elif cols["seq_lengths"]:
            pos = _positions_from_lengths(cols["seq_lengths"][i], len(x), where)
        else:
            pos = np.arange(len(x))
        positions.append(pos)
    keep = [i for i, y in enumerate(labels) if (y != IGNORE).any()]
    rows = Rows([ids[i] for i in keep], [labels[i] for i in keep], [positions[i] for i in keep])
    rows.stats = {"rows_read": len(ids), "dropped_no_label_tokens": len(ids) - len(keep), "truncated": 0}
    _add_efficiency(rows, max_length)
    return rows


def _read_unpacked(files: list[Path], max_length: int, pack: bool) -> Rows:
    cols = _read(files, ["input_ids", "labels"], [])
    ids, labels = cols["input_ids"], cols["labels"]
    truncated = 0
    seqs: list[tuple[np.ndarray, np.ndarray]] = []
    dropped = 0
    for i, (x, y) in enumerate(zip(ids, labels)):
        if len(x) != len(y):
            raise DataError(f"{files[0].parent}: row {i}: input_ids has {len(x)} tokens but labels has {len(y)}")
        if len(x) > max_length:
            x, y = x[:max_length], y[:max_length]
            truncated += 1
        if not (y != IGNORE).any():
            dropped += 1
            continue
        seqs.append((x, y))
    bins = pack_first_fit_decreasing([len(x) for x, _ in seqs], max_length) if pack else [[i] for i in range(len(seqs))]
    rows = Rows([], [], [])
    for b in bins:
        rows.input_ids.append(np.concatenate([seqs[i][0] for i in b]))
        rows.labels.append(np.concatenate([seqs[i][1] for i in b]))
        rows.position_ids.append(np.concatenate([np.arange(len(seqs[i][0])) for i in b]))
    rows.stats = {"rows_read": len(ids), "dropped_no_label_tokens": dropped, "truncated": truncated}
    _add_efficiency(rows, max_length)
    return rows


def _add_efficiency(rows: Rows, max_length: int) -> None:
    n = len(rows)
    rows.stats.update({
        "rows": n,
        "tokens": rows.n_tokens,
        "label_tokens": int(sum(int((y != IGNORE).sum()) for y in rows.labels)),
        "fill": round(rows.n_tokens / (n * max_length), 4) if n else 0.0,
    })


def pack_first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Group sequence indices into bins of at most `capacity` tokens (longest first, first bin that fits).

    Deterministic for a given input, so the same data always packs the same way (needed for
    exact resume). Bins are returned in creation order; the loop shuffles rows per epoch anyway.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        for b, room in enumerate(free):
            if n <= room:
                bins[b].append(i)
                free[b] -= n
                break
        else:
            bins.append([i])
            free.append(capacity - n)
    return bins


def collate(rows: Rows, index: list[int] | np.ndarray, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack rows into a batch: padded `input_ids`, `position_ids`, next-token `targets`, and
    `n_tokens` (real, non-pad tokens, for throughput).

    `targets[t]` is the label of token t+1 when t+1 belongs to the same sequence, else -100:
    the shift is done here, per sequence, so packed neighbours never leak into the loss.
    Padding sits in its own position block (0, 1, ...), never attended to by real tokens.
    """
    width = max(len(rows.input_ids[i]) for i in index)
    b = len(index)
    input_ids = np.full((b, width), pad_id, dtype=np.int64)
    labels = np.full((b, width), IGNORE, dtype=np.int64)
    position_ids = np.tile(np.arange(width, dtype=np.int64), (b, 1))
    for r, i in enumerate(index):
        n = len(rows.input_ids[i])
        input_ids[r, :n] = rows.input_ids[i]
        labels[r, :n] = rows.labels[i]
        position_ids[r, :n] = rows.position_ids[i]
        position_ids[r, n:] = np.arange(width - n)
    same_seq = np.diff(position_ids, axis=1) == 1
    targets = np.full_like(labels, IGNORE)
    targets[:, :-1] = np.where(same_seq, labels[:, 1:], IGNORE)
    n_tokens = sum(len(rows.input_ids[i]) for i in index)
    return {"input_ids": torch.from_numpy(input_ids), "position_ids": torch.from_numpy(position_ids),
            "targets": torch.from_numpy(targets), "n_tokens": torch.tensor(n_tokens)}

"""`pack`: best-fit-decreasing packing of tokenized rows into rows of at most `max_length` tokens.

Packing removes padding (often more than half the compute on SFT data with mixed lengths). The
danger is sequences attending to each other; every packed row therefore carries `position_ids`
restarting at 0 for each sequence and `seq_lengths`, so a trainer can build a block-diagonal
mask (transformers does it from `position_ids` when no attention_mask and no KV cache are used:
call the model with `use_cache=False`). The first label of every sequence is set to -100 so that
even a naive shift-by-one loss never asks one conversation to predict the start of the next
(that label is never trainable unpacked either: nothing precedes it).

Output: `OUT/packed/{split}-NNNNN.parquet` with `input_ids`, `labels`, `position_ids`,
`seq_lengths` (all list<int32>) and `ids` (source row ids). The manifest gets the efficiency.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from instructkit.errors import ConfigError, DataError
from instructkit.ops.base import Operator, OutputContext, register

IGNORE_INDEX = -100


def best_fit_decreasing(lengths: np.ndarray, capacity: int) -> np.ndarray:
    """Bin index per item: longest first, each into the fullest bin it still fits (else a new bin).

    Bins are numbered in creation order; ties keep input order, so the result is deterministic.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and int(lengths.max()) > capacity:
        raise ValueError(f"an item of length {int(lengths.max())} does not fit capacity {capacity}")
    order = np.argsort(-lengths, kind="stable")
    bins = np.empty(len(lengths), dtype=np.int64)
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin id)
    n_bins = 0
    for i in order.tolist():
        size = int(lengths[i])
        k = bisect.bisect_left(free, (size, -1))
        if k < len(free):
            rem, b = free.pop(k)
            bisect.insort(free, (rem - size, b))
        else:
            b = n_bins
            n_bins += 1
            bisect.insort(free, (capacity - size, b))
        bins[i] = b
    return bins


def _flat_ints(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.list_flatten(arr).to_numpy(zero_copy_only=False).astype(np.int32)


def pack_table(table: pa.Table, max_length: int) -> tuple[pa.Table, dict[str, int]]:
    """Pack a table with `input_ids` and `labels` (one sequence per row) into packed rows."""
    for col in ("input_ids", "labels"):
        if col not in table.column_names:
            raise ConfigError(f"steps.pack: the data has no '{col}' column; put a 'tokenize' step before 'pack'")
    ids_col = table.column("input_ids").combine_chunks()
    lab_col = table.column("labels").combine_chunks()
    lens = pc.list_value_length(ids_col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    lab_lens = pc.list_value_length(lab_col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if (lens != lab_lens).any():
        i = int(np.flatnonzero(lens != lab_lens)[0])
        raise DataError(f"steps.pack: row {i} has {lens[i]} input_ids but {lab_lens[i]} labels")
    if len(lens) and int(lens.max()) > max_length:
        raise ConfigError(f"steps.pack: a row has {int(lens.max())} tokens > pack.max_length {max_length}; "
                          "set tokenize.max_length <= pack.max_length")
    keep = lens > 0
    n_empty = int((~keep).sum())
    if n_empty:
        table, ids_col, lab_col, lens = table.filter(pa.array(keep)), ids_col.filter(pa.array(keep)), \
            lab_col.filter(pa.array(keep)), lens[keep]
    bins = best_fit_decreasing(lens, max_length)
    perm = np.lexsort((np.arange(len(bins)), bins))  # by bin, then input order inside a bin
    lens_p = lens[perm]
    flat_ids = _flat_ints(ids_col.take(pa.array(perm)))
    flat_lab = _flat_ints(lab_col.take(pa.array(perm))).copy()
    seq_starts = np.concatenate([[0], np.cumsum(lens_p)[:-1]]).astype(np.int64)
    flat_lab[seq_starts] = IGNORE_INDEX
    position = (np.arange(len(flat_ids), dtype=np.int64) - np.repeat(seq_starts, lens_p)).astype(np.int32)
    bins_p = bins[perm]
    n_bins = int(bins.max()) + 1 if len(bins) else 0
    per_bin_tokens = np.bincount(bins_p, weights=lens_p, minlength=n_bins).astype(np.int64)
    per_bin_seqs = np.bincount(bins_p, minlength=n_bins).astype(np.int64)
    tok_off = np.concatenate([[0], np.cumsum(per_bin_tokens)]).astype(np.int32)
    seq_off = np.concatenate([[0], np.cumsum(per_bin_seqs)]).astype(np.int32)

    def lists(offsets: np.ndarray, values: np.ndarray, typ: pa.DataType = pa.int32()) -> pa.Array:
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, typ))

    cols = {
        "input_ids": lists(tok_off, flat_ids),
        "labels": lists(tok_off, flat_lab),
        "position_ids": lists(tok_off, position),
        "seq_lengths": lists(seq_off, lens_p.astype(np.int32)),
    }
    if "id" in table.column_names:
        cols["ids"] = lists(seq_off, table.column("id").combine_chunks().take(pa.array(perm)), pa.string())
    packed = pa.table(cols)
    tokens = int(lens.sum())
    stats = {
        "sequences": int(len(lens)),
        "rows": n_bins,
        "tokens": tokens,
        "label_tokens": int((flat_lab != IGNORE_INDEX).sum()),
        "capacity": n_bins * max_length,
        "empty_sequences_skipped": n_empty,
    }
    return packed, stats


def _efficiency(stats: dict[str, int], max_length: int) -> dict[str, Any]:
    out = dict(stats)
    out["efficiency"] = round(stats["tokens"] / stats["capacity"], 4) if stats["capacity"] else None
    # What padding every sequence to max_length would use, for comparison.
    out["padded_efficiency"] = round(stats["tokens"] / (stats["sequences"] * max_length), 4) if stats["sequences"] else None
    return out


def split_of(path: Path) -> str:
    """`train-00003.parquet` -> `train` (the writer's shard naming)."""
    m = re.match(r"(.+?)-\d+$", path.stem)
    return m.group(1) if m else path.stem


@register
@dataclass
class Pack(Operator):
    """Pack the finished tokenized dataset (per split) with best-fit decreasing."""

    name = "pack"
    kind = "output"
    reads = ("input_ids", "labels")
    writes = ()

    max_length: int = 2048
    rows_per_file: int = 10000

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {self.max_length}")
        if self.rows_per_file < 1:
            raise ValueError(f"rows_per_file must be >= 1, got {self.rows_per_file}")

    def process(self, batch: pa.Table) -> pa.Table:  # output steps do their work in finalize
        return batch

    def finalize(self, ctx: OutputContext) -> dict[str, Any]:
        out_dir = Path(ctx.out_dir) / "packed"
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("*.parquet"):
            old.unlink()
        by_split: dict[str, list[Path]] = {}
        for p in sorted(ctx.data_files):
            by_split.setdefault(split_of(Path(p)), []).append(Path(p))
        result: dict[str, Any] = {"max_length": self.max_length, "splits": {}}
        total = {"sequences": 0, "rows": 0, "tokens": 0, "label_tokens": 0, "capacity": 0, "empty_sequences_skipped": 0}
        for split, files in by_split.items():
            cols = ["input_ids", "labels"]
            schema = pq.read_schema(files[0])
            if "id" in schema.names:
                cols.append("id")
            missing = [c for c in ("input_ids", "labels") if c not in schema.names]
            if missing:
                raise ConfigError(f"steps.pack: {files[0].name} has no '{missing[0]}' column; "
                                  "put a 'tokenize' step before 'pack'")
            table = pa.concat_tables([pq.read_table(f, columns=cols) for f in files])
            packed, stats = pack_table(table, self.max_length)
            files_out = []
            for k, start in enumerate(range(0, max(packed.num_rows, 1), self.rows_per_file)):
                path = out_dir / f"{split}-{k:05d}.parquet"
                pq.write_table(packed.slice(start, self.rows_per_file), path)
                files_out.append(path.name)
            result["splits"][split] = _efficiency(stats, self.max_length) | {"files": files_out}
            for key in total:
                total[key] += stats[key]
        result.update(_efficiency(total, self.max_length))
        return result

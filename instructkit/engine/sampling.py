"""Stable, id-keyed sampling for mixing sources and for the train/eval split.

A row's fate depends only on its id and the seed, never on other rows: adding or removing data
never moves an existing row between splits, and re-running a mix keeps the same rows.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash


def id_hash_unit(ids: pa.Array | pa.ChunkedArray, seed: int, salt: str) -> np.ndarray:
    """Map each id to a uniform float in [0, 1) with xxh3-64 of `salt:seed:id`."""
    prefix = f"{salt}:{seed}:"
    h = xxhash.xxh3_64_intdigest
    values = np.fromiter((h((prefix + (i or "")).encode()) for i in ids.to_pylist()), dtype=np.uint64, count=len(ids))
    return (values >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def sample_keep(ids: pa.Array | pa.ChunkedArray, fraction: float, seed: int) -> np.ndarray:
    """Keep mask for `fraction` of the rows, chosen by id."""
    return id_hash_unit(ids, seed, "mix") < fraction


def cap_threshold(units: np.ndarray, cap: int) -> float:
    """The hash value under which exactly `cap` rows fall (ties are vanishingly rare)."""
    if cap >= len(units):
        return 1.0
    return float(np.partition(units, cap)[cap])


def eval_mask(ids: pa.Array | pa.ChunkedArray, eval_ratio: float, seed: int) -> np.ndarray:
    return id_hash_unit(ids, seed, "split") < eval_ratio

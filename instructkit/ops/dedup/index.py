"""Saved dedup indexes: what a later run needs to drop rows already present in an earlier dataset.

An index is a directory of plain files any tool can read (numpy `.npy`, Parquet, JSON):

    meta.json          kind ("exact" | "minhash"), format version, the parameters that must
                       match for hashes to be comparable, row count
    ids.parquet        one column `id`, row order = the arrays' row order
    fingerprints.npy   exact:   uint64 [m, 2]  128-bit key fingerprints
    signatures.npy     minhash: uint32 [m, num_perm]  (datasketch affine32 hashvalues)
    band_keys.npy      minhash: uint64 [bands, m]  (one contiguous array per band)

Loading memory-maps the arrays, so an index of 10M rows costs page cache, not heap.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from instructkit.errors import ConfigError

FORMAT = 1


def _write_common(path: str | Path, meta: dict[str, Any], ids: pa.ChunkedArray | pa.Array) -> Path:
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids}), d / "ids.parquet")
    (d / "meta.json").write_text(json.dumps({**meta, "format": FORMAT, "count": len(ids)}, indent=2, sort_keys=True))
    return d


def _read_meta(path: str | Path, params: dict[str, Any]) -> tuple[Path, dict[str, Any], pa.ChunkedArray]:
    d = Path(path)
    meta_file = d / "meta.json"
    if not meta_file.exists():
        raise ConfigError(f"index_in: {d} is not a dedup index (no meta.json); write one with index_out first")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"index_in: {meta_file} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if meta.get("format") != FORMAT:
        raise ConfigError(f"index_in: {meta_file} has format {meta.get('format')!r}, this version reads {FORMAT}")
    for key, value in params.items():
        if meta.get(key) != value:
            raise ConfigError(
                f"index_in: {meta_file} was built with {key}={meta.get(key)!r} but this step uses {key}={value!r}; "
                "hashes are only comparable with identical settings"
            )
    ids = pq.read_table(d / "ids.parquet").column("id").cast(pa.string())
    return d, meta, ids


def save_exact_index(path: str | Path, params: dict[str, Any], fingerprints: np.ndarray, ids: pa.ChunkedArray) -> None:
    d = _write_common(path, params, ids)
    np.save(d / "fingerprints.npy", np.ascontiguousarray(fingerprints, dtype=np.uint64))


def load_exact_index(path: str | Path, params: dict[str, Any]) -> tuple[np.ndarray, pa.ChunkedArray]:
    d, _, ids = _read_meta(path, params)
    fp = np.load(d / "fingerprints.npy", mmap_mode="r")
    if len(fp) != len(ids):
        raise ConfigError(f"index_in: {d} is inconsistent ({len(fp)} fingerprints, {len(ids)} ids)")
    return np.asarray(fp), ids


def save_minhash_index(
    path: str | Path, params: dict[str, Any], signatures: np.ndarray, band_keys: np.ndarray, ids: pa.ChunkedArray
) -> None:
    """`band_keys` is band-major: uint64 [bands, m]."""
    d = _write_common(path, params, ids)
    np.save(d / "signatures.npy", np.ascontiguousarray(signatures, dtype=np.uint32))
    np.save(d / "band_keys.npy", np.ascontiguousarray(band_keys, dtype=np.uint64))


def load_minhash_index(path: str | Path, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, pa.ChunkedArray]:
    """(signatures [m, num_perm] memmap, band_keys [bands, m] memmap, ids)."""
    d, _, ids = _read_meta(path, params)
    sigs = np.load(d / "signatures.npy", mmap_mode="r")
    bands = np.load(d / "band_keys.npy", mmap_mode="r")
    if len(sigs) != len(ids) or bands.shape[1] != len(ids):
        raise ConfigError(f"index_in: {d} is inconsistent ({len(sigs)} signatures, {bands.shape[1]} band rows, {len(ids)} ids)")
    return sigs, bands, ids

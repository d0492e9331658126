"""Hugging Face `datasets`: a `save_to_disk` directory, or a Hub dataset name when online.

`datasets` is imported only here, so reading plain files never pays for it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from instructkit.errors import DataError


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


def load(path: str, split: str | None = None) -> Any:
    """A `datasets.Dataset` for a saved directory or a Hub name (one split)."""
    import datasets

    p = Path(path)
    if p.exists():
        try:
            ds = datasets.load_from_disk(str(p))
        except Exception as exc:  # datasets raises FileNotFoundError/ValueError with long messages
            raise DataError(f"{path}: not a dataset saved with save_to_disk ({str(exc).splitlines()[0]})") from None
    else:
        if _offline():
            raise DataError(f"{path}: not a local path, and the Hugging Face Hub is offline "
                            f"(HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set); save the dataset with save_to_disk first")
        try:
            ds = datasets.load_dataset(path, split=split or "train")
        except Exception as exc:
            raise DataError(f"{path}: could not load from the Hugging Face Hub ({str(exc).splitlines()[0][:200]})") from None
    if isinstance(ds, datasets.DatasetDict):
        want = split or ("train" if "train" in ds else (next(iter(ds)) if len(ds) == 1 else None))
        if want not in ds:
            raise DataError(f"{path}: split '{want or split}' not found; options.split is one of: {', '.join(ds)}")
        ds = ds[want]
    return ds


def column_names(path: str, split: str | None = None) -> list[str]:
    return list(load(path, split).column_names)


def iter_tables(path: str, split: str | None, batch_size: int) -> Iterator[pa.Table]:
    ds = load(path, split)
    row = 1
    for t in ds.with_format("arrow").iter(batch_size=batch_size):
        t = pa.table(t) if not isinstance(t, pa.Table) else t
        yield t.append_column("_line", pa.array(range(row, row + t.num_rows), pa.int64()))
        row += t.num_rows

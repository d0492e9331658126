"""Option checks and per-batch column gathering shared by `exact_dedup` and `minhash_dedup`."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructkit import messages as msg
from instructkit.errors import ConfigError
from instructkit.ops.dedup.clusters import KEEP_POLICIES
from instructkit.ops.dedup.normalize_key import KEYS


def check_keep(name: str, keep: str) -> None:
    if keep in ("first", "longest") or (keep.startswith(("max:", "min:")) and len(keep) > 4):
        return
    raise ValueError(f"keep must be one of {', '.join(KEEP_POLICIES)}, got {keep!r}")


def check_key(key: str) -> None:
    if key not in KEYS:
        raise ValueError(f"key must be one of {', '.join(KEYS)}, got {key!r}")


def keep_inputs(name: str, keep: str, batch: pa.Table) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(length, value) arrays a keep policy needs for this batch (None when not needed).

    `longest` measures the whole conversation (all turns' characters), not just the dedup key:
    the row with the most content survives.
    """
    length = value = None
    if keep == "longest":
        rows, _, content = msg.flatten(batch.column("messages"))
        chars = pc.utf8_length(content.fill_null("")).to_numpy(zero_copy_only=False)
        length = np.bincount(rows, weights=chars, minlength=batch.num_rows).astype(np.int64)
    elif keep.startswith(("max:", "min:")):
        col = keep[4:]
        if col not in batch.column_names:
            raise ConfigError(f"{name}: keep '{keep}' names column '{col}', which the data does not have "
                              f"(columns: {', '.join(batch.column_names)})")
        try:
            value = batch.column(col).cast(pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ConfigError(f"{name}: keep '{keep}' needs a numeric column, '{col}' is {batch.schema.field(col).type}") from None
    return length, value


def concat_or_none(parts: list[np.ndarray | None]) -> np.ndarray | None:
    if not parts or parts[0] is None:
        return None
    return np.concatenate(parts)

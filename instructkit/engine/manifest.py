"""The run manifest and the accounting check `read == written + rejected`.

The manifest is the run's receipt: what went in, what each stage did, what came out, with
which versions. The trainer and the report read it; the check makes lost rows a hard error.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from instructkit.errors import InvariantError

_PACKAGES = ("instructkit", "pyarrow", "polars", "numpy", "datasketch", "langdetect", "transformers", "tokenizers",
             "great_expectations", "ray", "torch")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def config_hash(config: dict[str, Any]) -> str:
    """Hash of what determines the output (inputs, steps, split), not where it is written."""
    relevant = {k: config.get(k) for k in ("inputs", "steps", "split", "mix")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_accounting(read: int, written: int, rejected: int) -> dict[str, Any]:
    """Raise when a row was lost or invented between reading and writing."""
    ok = read == written + rejected
    result = {"ok": ok, "read": read, "written": written, "rejected": rejected}
    if not ok:
        diff = read - written - rejected
        raise InvariantError(
            f"row accounting failed: read {read} != written {written} + rejected {rejected} "
            f"({abs(diff)} rows {'lost' if diff > 0 else 'invented'})"
        )
    return result


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str, ensure_ascii=False))
    tmp.replace(path)

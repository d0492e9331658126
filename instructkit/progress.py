"""Progress bars that stay quiet when output is not a terminal (CI logs, pipes)."""
from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm


def progress(desc: str, unit: str = "rows", total: int | None = None, disable: bool = False, **kw: Any) -> tqdm:
    quiet = disable or os.environ.get("INSTRUCTKIT_QUIET") == "1" or not sys.stderr.isatty()
    return tqdm(desc=desc, unit=unit, total=total, disable=quiet, unit_scale=True, dynamic_ncols=True, **kw)

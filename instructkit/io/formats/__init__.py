"""Record formats by name. `oasst` (trees) and `hf` (a container, not a record shape) are
handled by their own readers, see `oasst.py` and `hf.py`."""
from __future__ import annotations

from instructkit.io.formats import alpaca, canonical, dolly, openai, prompt_completion, sharegpt
from instructkit.io.formats.base import DEFAULT_ROLE_ALIASES, Format

FORMATS: dict[str, Format] = {m.FORMAT.name: m.FORMAT for m in (alpaca, sharegpt, openai, prompt_completion, dolly, canonical)}

__all__ = ["FORMATS", "Format", "DEFAULT_ROLE_ALIASES"]

"""Reading a user's YAML file with a one-line error that names the file and line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from instructkit.errors import ConfigError


def read_yaml(path: str | Path, what: str = "YAML file") -> Any:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None

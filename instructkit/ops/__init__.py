"""Built-in operators. Importing this package registers them all (registry name == YAML key).

Every module below `instructkit/ops/` is imported once, so adding an operator is adding a file
with an `@register`ed class: no central list to edit.
"""
from __future__ import annotations

import importlib
import pkgutil

from instructkit.ops.base import REGISTRY, Decision, Operator, OutputContext, build, register


def _import_all() -> None:
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        importlib.import_module(info.name)


_import_all()

__all__ = ["REGISTRY", "Decision", "Operator", "OutputContext", "build", "register"]

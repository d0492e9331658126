"""`quality_gate` output step: validate the finished dataset with great-expectations.

The heavy lifting lives in `instructkit.quality.gate`; this file only adapts it to the operator
contract so the same suite runs from YAML, from `Pipeline` and from tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from instructkit.errors import ConfigError
from instructkit.ops.base import Operator, OutputContext, register


@register
@dataclass
class QualityGate(Operator):
    """Great-expectations gate on the output; a failure quarantines the data and exits non-zero.

    `preset` (sft_default | strict), an optional suite file, and inline `expect` overrides are
    merged in that order (docs/quality.md lists every expectation).
    """

    name = "quality_gate"
    kind = "output"
    reads = ("id", "messages")
    writes = ()

    preset: str | None = "sft_default"
    suite: str | None = None
    expect: dict = field(default_factory=dict)
    mode: str | None = None  # auto | full | statistics
    full_scan_max_rows: int | None = None
    sample_rows: int | None = None
    on_missing_column: str | None = None
    lang_column: str | None = None

    def __post_init__(self) -> None:
        from instructkit.quality.gate import load_suite

        if not isinstance(self.expect, dict):
            raise ConfigError(f"quality_gate.expect: expected a mapping, got {self.expect!r}")
        # resolve now so a bad suite fails before any data is read
        self._suite = load_suite(self.preset, self.suite, self.expect, mode=self.mode,
                                 full_scan_max_rows=self.full_scan_max_rows, sample_rows=self.sample_rows,
                                 on_missing_column=self.on_missing_column, lang_column=self.lang_column)

    def finalize(self, ctx: OutputContext) -> dict[str, Any]:
        from instructkit.quality import gate, stats

        st = stats.cached(ctx.out_dir, ctx.manifest, ctx.data_files, lang_column=self._suite.lang_column)
        result = gate.check(self._suite, st, ctx.data_files)  # raises GateFailed with .result
        return {"gate": result}

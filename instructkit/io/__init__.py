"""Reading and writing data: every input format in, canonical Arrow batches out.

Public API: `InputSpec` (one `inputs:` entry), `read_input(spec)` (batches with provenance
columns), `detect_format(path)` / `detect(path)` (record format + why).
"""
from __future__ import annotations

from instructkit.io.detect import Detection, detect, detect_format
from instructkit.io.reader import read_input
from instructkit.io.spec import InputSpec

__all__ = ["InputSpec", "read_input", "detect", "detect_format", "Detection"]

"""The vectorized byte-range hash equals its pure-Python reference, including across slices."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from instructkit.ops.dedup import hashing


def test_range_poly_matches_reference_on_random_ranges(monkeypatch):
    rng = np.random.default_rng(0)
    buf = rng.integers(0, 256, 5000, dtype=np.uint8)
    starts = rng.integers(0, 5000, 300)
    ends = np.minimum(starts + rng.integers(0, 200, 300), 5000)
    # tiny slices force the multi-slice path (and a range longer than a slice)
    monkeypatch.setattr(hashing, "MAX_SLICE_BYTES", 64)
    got = hashing.range_poly(buf, starts, ends)
    want = [hashing.poly_bytes_int(bytes(buf[s:e])) for s, e in zip(starts, ends)]
    assert [int(x) for x in got] == want


def test_fmix64_matches_scalar_version():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2**63, 100, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    assert [int(v) for v in hashing.fmix64(x)] == [hashing.fmix64_int(int(v)) for v in x]


def test_text_fingerprints_equal_iff_text_equal():
    texts = ["abc", "abd", "", "abc", "ab", "c", "ABC", "abc" * 1000, "abc" * 1000]
    fp = hashing.text_fingerprints(pa.array(texts))
    for i, a in enumerate(texts):
        for j, b in enumerate(texts):
            assert (fp[i] == fp[j]).all() == (a == b)

"""Exact Jaccard of CSR sets equals Python set arithmetic, whatever the chunking."""
from __future__ import annotations

import numpy as np

from instructkit.ops.dedup.verify import exact_jaccard, signature_similarity, unique_sets


def test_exact_jaccard_matches_python_sets():
    rng = np.random.default_rng(0)
    sets = [rng.integers(0, 40, rng.integers(0, 30)).astype(np.uint32) for _ in range(50)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sets])]).astype(np.int64)
    vals, voff = unique_sets(np.concatenate(sets), offsets)
    a = rng.integers(0, 50, 200)
    b = rng.integers(0, 50, 200)
    want = [len(set(sets[i]) & set(sets[j])) / len(set(sets[i]) | set(sets[j])) if len(set(sets[i]) | set(sets[j])) else 0.0
            for i, j in zip(a, b)]
    np.testing.assert_allclose(exact_jaccard(vals, voff, a, b), want)
    np.testing.assert_allclose(exact_jaccard(vals, voff, a, b, max_items=7), want)  # many small chunks


def test_signature_similarity_is_fraction_of_equal_slots():
    sigs = np.array([[1, 2, 3, 4], [1, 2, 0, 0], [9, 9, 9, 9]], dtype=np.uint32)
    sim = signature_similarity(lambda idx: sigs[idx], np.array([0, 0, 1]), np.array([1, 2, 1]), chunk=2)
    assert sim.tolist() == [0.5, 0.0, 1.0]

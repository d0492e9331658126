"""LSH parameters match datasketch, band keys behave like buckets, edges stay linear."""
from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from instructkit.ops.dedup import lsh
from instructkit.ops.dedup.minhash import signatures


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.85, 0.9])
@pytest.mark.parametrize("num_perm", [32, 128, 256])
def test_optimal_bands_equals_datasketch(threshold, num_perm):
    assert lsh.optimal_bands(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_band_hashes_equal_exactly_when_band_slots_equal():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, (50, 24), dtype=np.uint64).astype(np.uint32)
    sigs[10] = sigs[3]
    sigs[20, :8] = sigs[4, :8]  # only band 0 of (3 bands x 8 rows) equal
    keys = lsh.band_hashes(sigs, 3, 8)
    assert keys.shape == (50, 3) and keys.dtype == np.uint64
    for i in range(50):
        for j in range(50):
            for b in range(3):
                same = (sigs[i, b * 8:(b + 1) * 8] == sigs[j, b * 8:(b + 1) * 8]).all()
                assert (keys[i, b] == keys[j, b]) == same


def test_bucket_edges_link_members_to_first_row():
    keys = np.array([5, 7, 5, 5, 9, 7], dtype=np.uint64)
    src, dst = lsh.bucket_edges(keys)
    assert sorted(zip(src.tolist(), dst.tolist())) == [(2, 0), (3, 0), (5, 1)]


def test_ten_thousand_identical_rows_give_linear_edges():
    sigs = np.tile(signatures(["the same text repeated many times over"], 128)[0], (10_000, 1))
    keys = lsh.band_hashes(sigs, 9, 13)
    src, dst = lsh.candidate_edges(keys)
    assert len(src) == 9_999  # star edges, deduplicated across bands; all-pairs would be ~5e7
    assert (dst == 0).all()


def test_candidates_agree_with_datasketch_minhashlsh():
    """Our signatures can be indexed by datasketch's MinHashLSH; it finds the same candidates."""
    base = [" ".join(f"tok{(i * 7 + k) % 997}" for k in range(60)) for i in range(40)]
    texts = base + [t.replace("tok", "tok", 1)[:-6] + " extra" for t in base[:10]]
    sigs = signatures(texts, 128, 1, 5)
    b, r = lsh.optimal_bands(0.8, 128)
    src, dst = lsh.candidate_edges(lsh.band_hashes(sigs, b, r))
    ours = set(zip(src.tolist(), dst.tolist()))
    index = MinHashLSH(threshold=0.8, num_perm=128)
    assert (index.b, index.r) == (b, r)
    mhs = [MinHash(num_perm=128, seed=1, hashvalues=s, scheme="affine32") for s in sigs]
    for i, m in enumerate(mhs):
        index.insert(i, m)
    theirs = set()
    for i, m in enumerate(mhs):
        for j in index.query(m):
            if j != i:
                theirs.add((max(i, j), min(i, j)))
    # datasketch returns all bucket pairs; ours are star edges: same connected components
    from instructkit.ops.dedup.clusters import connected_components
    a = connected_components(len(texts), *zip(*ours)) if ours else np.arange(len(texts))
    t_src, t_dst = (np.array(x) for x in zip(*theirs)) if theirs else (np.zeros(0, int), np.zeros(0, int))
    np.testing.assert_array_equal(a, connected_components(len(texts), t_src, t_dst))
    assert len(theirs) >= 10


def test_collision_probability_s_curve():
    p = lsh.collision_probability(np.array([0.5, 0.8, 0.95]), 9, 13)
    assert p[0] < 0.05 and p[2] > 0.99 and 0.3 < p[1] < 0.9

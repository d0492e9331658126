"""Connected components equal a reference union-find; keep policies are deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from instructkit.ops.dedup.clusters import choose_keepers, cluster_sizes, connected_components, local_clusters


def _union_find(n, edges):
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = [find(i) for i in range(n)]
    smallest = {}
    for i, r in enumerate(roots):
        smallest.setdefault(r, i)
    return np.array([smallest[r] for r in roots])


@pytest.mark.parametrize("seed", range(5))
def test_components_match_union_find(seed):
    rng = np.random.default_rng(seed)
    n = 300
    e = rng.integers(0, n, (200, 2))
    got = connected_components(n, e[:, 0], e[:, 1])
    np.testing.assert_array_equal(got, _union_find(n, e.tolist()))


def test_components_edge_cases():
    assert connected_components(0, [], []).tolist() == []
    assert connected_components(["a", "b", "c"], [], []).tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        connected_components(3, [0], [5])


def test_keep_policies_and_tie_breaks():
    clusters = connected_components(6, [1, 2, 4], [0, 0, 3])  # {0,1,2} {3,4} {5}
    ids = ["c", "b", "a", "y", "x", "z"]
    assert choose_keepers(clusters, "first").tolist() == [0, 0, 0, 3, 3, 5]
    # longest: rows 1 and 2 tie on length -> smaller id "a" (row 2) wins
    assert choose_keepers(clusters, "longest", ids=ids, length=[1, 9, 9, 4, 4, 0]).tolist() == [2, 2, 2, 4, 4, 5]
    # max: NaN never wins; min works the other way
    assert choose_keepers(clusters, "max:score", ids=ids, value=[np.nan, 1.0, 0.5, 2, 3, 0]).tolist() == [1, 1, 1, 4, 4, 5]
    assert choose_keepers(clusters, "min:score", ids=ids, value=[np.nan, 1.0, 0.5, 2, 3, 0]).tolist() == [2, 2, 2, 3, 3, 5]
    # priority (saved-index rows) beats the policy
    assert choose_keepers(clusters, "longest", ids=ids, length=[1, 9, 9, 4, 4, 0],
                          priority=[1, 0, 0, 0, 0, 0]).tolist() == [0, 0, 0, 4, 4, 5]
    with pytest.raises(ValueError):
        choose_keepers(clusters, "random")


def test_keepers_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    n = 200
    e = rng.integers(0, n, (150, 2))
    ids = np.array([f"id{i:04d}" for i in rng.permutation(n)])
    length = rng.integers(0, 5, n)
    keep = choose_keepers(connected_components(n, e[:, 0], e[:, 1]), "longest", ids=list(ids), length=length)
    perm = rng.permutation(n)
    inv = np.argsort(perm)
    e2 = inv[e]
    keep2 = choose_keepers(connected_components(n, e2[:, 0], e2[:, 1]), "longest", ids=list(ids[perm]), length=length[perm])
    assert set(ids[keep]) == set(ids[perm][keep2])


def test_sizes_and_local_clusters():
    c = np.array([0, 0, 2, 0, 2, 5])
    assert cluster_sizes(c).tolist() == [3, 3, 2, 3, 2, 1]
    # first two rows belong to a saved index: cluster ids are re-based on this run's rows
    assert local_clusters(c, 2).tolist() == [0, 1, 0, 3]

"""The vectorized messages builder against a plain Python reference on random pieces."""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from instructkit.io.assemble import Piece, build, join_nonempty, map_roles


def test_build_matches_python_reference():
    rng = random.Random(3)
    n = 200
    pieces, ref = [], [[] for _ in range(n)]
    for k in range(4):
        counts = np.array([rng.choice([0, 0, 1, 2, 3]) for _ in range(n)], dtype=np.int64)
        roles, contents = [], []
        for i, c in enumerate(counts):
            for j in range(c):
                role, text = rng.choice(["user", "assistant", "system"]), f"p{k}-r{i}-t{j}"
                roles.append(role)
                contents.append(text)
                ref[i].append({"role": role, "content": text})
        pieces.append(Piece(counts, pa.array(roles, pa.string()), pa.array(contents, pa.string())))
    assert build(n, pieces).to_pylist() == ref
    assert build(3, []).to_pylist() == [[], [], []]


def test_map_roles_and_join():
    mapped, unknown = map_roles(pa.array(["Human", " gpt", "narrator", None]), {"human": "user", "gpt": "assistant"})
    assert mapped.to_pylist() == ["user", "assistant", None, None]
    assert unknown.tolist() == [False, False, True, True]
    out = join_nonempty(pa.array(["a", "b", "c"]), pa.array(["x", "  ", None]), "\n\n")
    assert out.to_pylist() == ["a\n\nx", "b", "c"]

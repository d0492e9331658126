"""Saved indexes round-trip and refuse mismatched settings; replay by id when order changes."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from instructkit.errors import ConfigError, InvariantError
from instructkit.ops.dedup.index import load_minhash_index, save_minhash_index
from instructkit.ops.dedup.rows import RowDecisions
from tests.conftest import make_table


def test_minhash_index_round_trip_and_mismatch(tmp_path):
    sigs = np.arange(12, dtype=np.uint32).reshape(3, 4)
    keys = np.arange(6, dtype=np.uint64).reshape(2, 3)
    params = {"kind": "minhash", "num_perm": 4, "seed": 1}
    save_minhash_index(tmp_path, params, sigs, keys, pa.chunked_array([["a", "b", "c"]]))
    s, k, ids = load_minhash_index(tmp_path, params)
    np.testing.assert_array_equal(s, sigs)
    np.testing.assert_array_equal(k, keys)
    assert ids.to_pylist() == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="seed=1 but this step uses seed=2"):
        load_minhash_index(tmp_path, {**params, "seed": 2})


def test_row_decisions_follow_ids_when_batches_are_reordered():
    t = make_table([[("user", str(i)), ("assistant", "x")] for i in range(6)])
    st = RowDecisions("test", pa.chunked_array([t.column("id").combine_chunks()]), np.array([1, 0, 1, 0, 1, 0], bool))
    assert st.take(t.slice(0, 3)).tolist() == [0, 1, 2]
    assert st.take(t.slice(4, 2)).tolist() == [4, 5]  # out of order: looked up by id
    dup = RowDecisions("test", pa.chunked_array([["a", "a"]]), np.ones(2, bool))
    dup.cursor = 1
    with pytest.raises(InvariantError):
        dup.take(make_table([[("user", "q"), ("assistant", "a")]], ids=["zz"]))  # unknown id, ids not unique

from __future__ import annotations

import pyarrow as pa

from instructkit import messages as m
from tests.conftest import make_table


def test_role_text_and_counts():
    t = make_table([[("user", "a"), ("assistant", "b"), ("user", "c")], [("assistant", "x")]])
    col = t.column("messages")
    assert m.role_text(col, ["user"]).to_pylist() == ["a\nc", ""]
    assert m.role_text(col, ["user"], last_only=True).to_pylist() == ["c", ""]
    assert m.count_roles(col, "assistant").tolist() == [1, 1]
    assert m.turn_index(col).tolist() == [0, 1, 2, 0]


def test_rebuild_roundtrip_and_content_ids_stable():
    t = make_table([[("user", "a"), ("assistant", "b")], [("user", "a\x1fb"), ("assistant", "")]])
    col = t.column("messages")
    rows, role, content = m.flatten(col)
    assert m.rebuild(col, rows, role, content, t.num_rows).to_pylist() == col.to_pylist()
    ids1 = m.content_ids(col).to_pylist()
    ids2 = m.content_ids(pa.chunked_array([col.combine_chunks()])).to_pylist()
    assert ids1 == ids2 and ids1[0] != ids1[1] and len(ids1[0]) == 32

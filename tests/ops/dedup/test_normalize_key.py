"""Dedup keys pick the right turns and normalization folds the right differences."""
from __future__ import annotations

import pytest

from instructkit.ops.dedup.normalize_key import dedup_text
from tests.conftest import make_table


def _table():
    return make_table([
        [("system", "Be nice."), ("user", "Hello,   WORLD!"), ("assistant", "Ｈｉ there.")],
        [("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")],
        [],
    ])


def test_keys_select_turns():
    col = _table().column("messages")
    assert dedup_text(col, "conversation").to_pylist() == [
        "system: be nice. user: hello, world! assistant: hi there.", "user: q1 assistant: a1 user: q2 assistant: a2", ""]
    assert dedup_text(col, "user_assistant").to_pylist() == ["hello, world! hi there.", "q1 a1 q2 a2", ""]
    assert dedup_text(col, "first_user").to_pylist() == ["hello, world!", "q1", ""]
    assert dedup_text(col, "last_assistant").to_pylist() == ["hi there.", "a2", ""]


def test_normalization_options():
    col = _table().column("messages")
    assert dedup_text(col, "first_user", strip_punctuation=True).to_pylist()[0] == "hello world"
    assert dedup_text(col, "first_user", lowercase=False, collapse_whitespace=False).to_pylist()[0] == "Hello,   WORLD!"
    assert dedup_text(col, "assistant", unicode="none", lowercase=False).to_pylist()[0] == "Ｈｉ there."


def test_unknown_key_is_a_clear_error():
    with pytest.raises(ValueError, match="key must be one of"):
        dedup_text(_table().column("messages"), "everything")

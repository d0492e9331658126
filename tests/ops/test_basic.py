from __future__ import annotations

import pytest

from instructkit.errors import ConfigError
from instructkit.ops import build
from tests.conftest import make_table


def run(spec, table):
    op, _ = build(spec)
    op.setup()
    return op.process(table)


def test_normalize_fixes_whitespace_unicode_and_roles():
    t = make_table([[(" User", "  caf\u0065\u0301   au lait \r\n\n\n\n\nok\x07  "), ("assistant", "    def f():\n        return 1")]])
    out = run({"normalize": {}}, t).column("messages").to_pylist()[0]
    assert out[0] == {"role": "user", "content": "caf\u00e9 au lait\n\n\nok"}
    # code indentation inside a turn is preserved; only the outer whitespace is trimmed
    assert out[1]["content"] == "def f():\n        return 1"


def test_normalize_nfkc_folds_fullwidth():
    t = make_table([[("user", "ＡＢＣ１"), ("assistant", "x")]])
    out = run({"normalize": {"unicode": "NFKC"}}, t).column("messages").to_pylist()[0]
    assert out[0]["content"] == "ABC1"


def test_drop_empty_turns_removes_turns_and_rejects_untrainable_rows():
    t = make_table([
        [("user", "hi"), ("assistant", "hello"), ("user", "  "), ("assistant", "more")],
        [("user", "q"), ("assistant", " \n ")],
        [("user", ""), ("assistant", "")],
    ])
    d = run("drop_empty_turns", t)
    assert d.reason.to_pylist() == [None, "no_assistant_turn", "empty_conversation"]
    kept = d.table.column("messages").to_pylist()[0]
    assert [m["content"] for m in kept] == ["hi", "hello", "more"]


@pytest.mark.parametrize(
    "conv,reason",
    [
        ([("system", "s"), ("user", "q"), ("assistant", "a")], None),
        ([("user", "q"), ("assistant", "a"), ("tool", "r"), ("assistant", "b")], None),
        ([("assistant", "a"), ("user", "q")], "first_turn_not_user"),
        ([("user", "q"), ("narrator", "x"), ("assistant", "a")], "unknown_role"),
        ([("user", "q"), ("system", "s"), ("assistant", "a")], "misplaced_system"),
        ([("user", "q"), ("user", "q2"), ("assistant", "a")], "roles_not_alternating"),
        ([("user", "q"), ("assistant", "a"), ("user", "q2")], "ends_without_assistant"),
        ([("user", "q")], "no_assistant_turn"),
    ],
)
def test_validate_roles(conv, reason):
    d = run("validate_roles", make_table([conv]))
    assert d.reason.to_pylist() == [reason]


def test_length_filter_annotates_and_rejects():
    t = make_table([[("user", "abc"), ("assistant", "x" * 10)], [("user", "abc"), ("assistant", "x")]])
    d = run({"length_filter": {"min_assistant_chars": 5}}, t)
    assert d.table.column("chars_assistant").to_pylist() == [10, 1]
    assert d.reason.to_pylist() == [None, "assistant_too_short"]


def test_bad_options_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="unknown option 'min_chars'"):
        build({"length_filter": {"min_chars": 3}})
    with pytest.raises(ConfigError, match="expects int"):
        build({"length_filter": {"min_turns": "two"}})
    with pytest.raises(ConfigError, match="unknown operator 'normalise'"):
        build({"normalise": {}})
    with pytest.raises(ConfigError, match="unicode must be"):
        build({"normalize": {"unicode": "NFX"}})

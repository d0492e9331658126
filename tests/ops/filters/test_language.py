from __future__ import annotations

import pytest

from instructkit.errors import ConfigError
from instructkit.ops import build
from tests.conftest import make_table
from tests.ops.filters.test_langid import CLEAR

EN_Q = "Could you explain in a few sentences why the sky looks blue during the day and red at sunset?"
EN_A = ("Sunlight is scattered by the molecules of the air, and blue light is scattered much more than red light, "
        "so the sky looks blue; at sunset the light travels through more air and the blue is scattered away.")
FR_A = ("La lumière du soleil est diffusée par les molécules de l'air, et la lumière bleue est beaucoup plus diffusée "
        "que la rouge, donc le ciel paraît bleu; au coucher du soleil la lumière traverse plus d'air.")


def run(spec, table):
    op, _ = build(spec)
    op.setup()
    return op.process(table)


def test_columns_keep_lists_and_mismatch():
    t = make_table([
        [("user", EN_Q), ("assistant", EN_A)],
        [("user", EN_Q), ("assistant", FR_A)],
        [("user", CLEAR["de"]), ("assistant", CLEAR["de"])],
        [("user", "Translate into French: " + EN_A), ("assistant", FR_A)],
        [("user", "2+2?"), ("assistant", "4")],
    ])
    d = run({"language": {"user_langs": ["en"]}}, t)
    assert d.table.column("lang_user").to_pylist()[:4] == ["en", "en", "de", "en"]
    assert d.table.column("lang_assistant").to_pylist()[:4] == ["en", "fr", "de", "fr"]
    assert d.table.column("lang_mismatch").to_pylist() == [False, True, False, False, False]
    assert d.reason.to_pylist() == [None, "lang_mismatch", "lang_user_not_allowed", None, None]


def test_keep_list_matches_base_language_and_mismatch_can_be_off():
    t = make_table([[("user", CLEAR["zh-cn"]), ("assistant", CLEAR["zh-cn"])], [("user", EN_Q), ("assistant", FR_A)]])
    d = run({"language": {"user_langs": ["zh"], "assistant_langs": ["zh", "fr"], "drop_mismatch": False}}, t)
    assert d.reason.to_pylist() == [None, "lang_user_not_allowed"]
    assert d.table.column("lang_mismatch").to_pylist() == [False, True]


def test_code_answers_are_not_judged():
    code = "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # la somme des deux nombres est affichée ici"
    t = make_table([[("user", EN_Q), ("assistant", code)]])
    d = run({"language": {"assistant_langs": ["en"]}}, t)
    assert d.reason.to_pylist() == [None]


def test_reference_engine_agrees_on_clear_text():
    t = make_table([[("user", EN_Q), ("assistant", FR_A)]])
    fast = run("language", t).table
    ref = run({"language": {"engine": "langdetect"}}, t).table
    assert fast.column("lang_assistant").to_pylist() == ref.column("lang_assistant").to_pylist() == ["fr"]


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        build({"language": {"engine": "cld3"}})
    with pytest.raises(ConfigError):
        build({"language": {"min_prob": "high"}})
    with pytest.raises(ConfigError, match="list of language codes"):
        build({"language": {"user_langs": "en"}})

"""InputSpec: YAML input entries are validated with one-line errors naming the key."""
from __future__ import annotations

import pytest

from instructkit.errors import ConfigError
from instructkit.io.spec import InputSpec


def test_defaults_and_shorthand():
    s = InputSpec.from_dict("data/x.jsonl", "p.yaml: inputs[0]")
    assert (s.path, s.format, s.on_error, s.columns, s.options) == ("data/x.jsonl", "auto", "reject", {}, {})
    s2 = InputSpec.from_dict({"path": "a.json", "format": "sharegpt", "weight": 0.5, "cap": 10,
                              "columns": {"conversations": "items"}, "options": {"role_aliases": {"bot": "assistant"}}})
    assert s2.weight == 0.5 and s2.cap == 10 and s2.columns == {"conversations": "items"}


@pytest.mark.parametrize("d, key", [
    ({"path": "a", "formt": "alpaca"}, "'formt'"),
    ({"path": "a", "format": "alpacca"}, "'format'"),
    ({"path": "a", "on_error": "skip"}, "'on_error'"),
    ({"path": "a", "weight": 1.5}, "'weight'"),
    ({"path": "a", "weight": True}, "'weight'"),
    ({"path": "a", "cap": -1}, "'cap'"),
    ({"path": "a", "columns": {"output": 3}}, "'columns'"),
    ({"path": "a", "file_type": "xlsx"}, "'file_type'"),
    ({"path": "a", "format": "oasst", "options": {"paths": "longest"}}, "'options.paths'"),
    ({"path": "a", "format": "alpaca", "options": {"role_aliases": {"x": "y"}}}, "'role_aliases'"),
    ({"path": "a", "format": "sharegpt", "options": {"role_aliases": {"bot": "robot"}}}, "'options.role_aliases'"),
    ({"path": "a", "options": {"max_record_bytes": 0}}, "'options.max_record_bytes'"),
    ({"format": "alpaca"}, "'path'"),
    (["a"], "expected a mapping"),
])
def test_bad_keys_name_the_key(d, key):
    with pytest.raises(ConfigError) as ei:
        InputSpec.from_dict(d, "pipe.yaml: inputs[2]")
    msg = str(ei.value)
    assert msg.startswith("pipe.yaml: inputs[2]") and key in msg and "\n" not in msg

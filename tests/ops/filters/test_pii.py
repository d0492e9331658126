from __future__ import annotations

import pytest

from instructkit.errors import ConfigError
from instructkit.ops import build
from instructkit.ops.filters.pii import iban_valid, luhn_valid
from tests.conftest import make_table

TEXT = ("Write to maria.lopez@example.org or call +1 (415) 555-0132. Card 4111 1111 1111 1111, "
        "server 10.0.12.7 and fe80::1ff:fe23:4567:890a, IBAN DE89 3704 0044 0532 0130 00, "
        "key sk-proj4f9a8b7c6d5e4f3a2b1c0d9e8")
CLEAN = ("Version 1.2.3 shipped on 2021-05-09 at 12:30:45; order #123456 costs $19.99 and "
         "the card 4111 1111 1111 1112 fails its checksum.")


def run(mode, rows, **opts):
    op, _ = build({"pii": {"mode": mode, **opts}})
    return op.process(make_table([[("user", u), ("assistant", a)] for u, a in rows]))


def test_flag_counts_every_type_and_ignores_lookalikes():
    d = run("flag", [(TEXT, "ok"), (CLEAN, "ok")])
    assert d.table.column("pii_types").to_pylist() == [
        ["api_key", "credit_card", "email", "iban", "ipv4", "ipv6", "phone"], []]
    assert d.table.column("pii_count").to_pylist() == [7, 0]
    assert d.reason.to_pylist() == [None, None]
    assert d.table.column("messages").to_pylist()[0][0]["content"] == TEXT


def test_redact_replaces_with_typed_placeholders():
    d = run("redact", [(TEXT, "Mail maria.lopez@example.org")])
    user, asst = [m["content"] for m in d.table.column("messages").to_pylist()[0]]
    assert asst == "Mail <EMAIL>"
    for ph in ("<EMAIL>", "<PHONE>", "<CREDIT_CARD>", "<IP_ADDRESS>", "<IBAN>", "<API_KEY>"):
        assert ph in user
    for secret in ("maria", "4111", "10.0.12.7", "fe80", "DE89", "sk-proj", "555-0132"):
        assert secret not in user
    clean = run("redact", [(CLEAN, "ok")]).table.column("messages").to_pylist()[0][0]["content"]
    assert clean == CLEAN


def test_drop_mode_and_type_selection():
    d = run("drop", [(TEXT, "ok"), (CLEAN, "ok")])
    assert d.reason.to_pylist() == ["pii", None]
    d = run("drop", [("mail a@b.io", "ok")], types=["phone"])
    assert d.reason.to_pylist() == [None]


def test_checksums():
    assert luhn_valid(["4111111111111111", "4111 1111 1111 1112", "5500-0000-0000-0004", "1234"]).tolist() == [
        True, False, True, False]
    assert iban_valid(["GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 33"]).tolist() == [True, False]
    assert luhn_valid([]).shape == (0,)


def test_bad_mode_is_config_error():
    with pytest.raises(ConfigError):
        build({"pii": {"mode": "mask"}})
    with pytest.raises(ConfigError):
        build({"pii": {"types": ["ssn"]}})

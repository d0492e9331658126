"""Personal data and secrets: find, count, and flag / redact / drop.

Patterns run as Arrow (RE2) kernels over every turn of the batch at once. Two types need a
checksum to be precise: credit-card candidates are Luhn-checked with numpy over the extracted
digits, IBAN candidates with the ISO 13616 mod-97 rule (candidates are rare, so that part is
plain Python over the candidates only). Redaction replaces each hit with a typed placeholder
(`<EMAIL>`, `<PHONE>`, ...) so a model still learns where such data goes, never its value.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from instructkit import messages as msg
from instructkit.ops.base import Decision, Operator, register
from instructkit.ops.filters._text import details, set_columns

#: type -> (pattern, placeholder); order matters for redaction (keys before emails before phones).
PATTERNS: dict[str, str] = {
    "api_key": r"\b(sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[abprs]-[A-Za-z0-9-]{10,}"
               r"|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "ipv6": r"\b([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b([0-9A-Fa-f]{1,4}:){1,6}:([0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}\b",
    "ipv4": r"\b((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
    "credit_card": r"\b\d(?:[ -]?\d){12,18}\b",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
    "phone": r"(\+\d{1,3}[ .-]?)?(\(\d{2,4}\)[ .-]?|\b\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b",
}
PLACEHOLDERS = {"api_key": "<API_KEY>", "email": "<EMAIL>", "ipv6": "<IP_ADDRESS>", "ipv4": "<IP_ADDRESS>",
                "credit_card": "<CREDIT_CARD>", "iban": "<IBAN>", "phone": "<PHONE>"}
CHECKSUMMED = ("credit_card", "iban")


def luhn_valid(candidates: list[str]) -> np.ndarray:
    """Luhn check of many digit strings at once (right-aligned digit matrix, numpy)."""
    if not candidates:
        return np.zeros(0, dtype=bool)
    digits = [c.replace(" ", "").replace("-", "") for c in candidates]
    width = max(len(d) for d in digits)
    mat = np.zeros((len(digits), width), dtype=np.int64)
    padded = np.frombuffer("".join(d.rjust(width, "0") for d in digits).encode(), dtype=np.uint8)
    mat[:] = (padded.reshape(len(digits), width) - ord("0"))
    from_right = np.arange(width)[::-1]
    doubled = np.where(from_right % 2 == 1, mat * 2, mat)
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    lengths = np.fromiter((len(d) for d in digits), dtype=np.int64, count=len(digits))
    return (doubled.sum(axis=1) % 10 == 0) & (lengths >= 13) & (lengths <= 19)


def iban_valid(candidates: list[str]) -> np.ndarray:
    out = np.zeros(len(candidates), dtype=bool)
    for i, c in enumerate(candidates):
        s = c.replace(" ", "")
        if not 15 <= len(s) <= 34:
            continue
        moved = s[4:] + s[:4]
        num = "".join(str(int(ch, 36)) for ch in moved)
        out[i] = int(num) % 97 == 1
    return out


def find_checksummed(content: pa.Array, kind: str) -> tuple[np.ndarray, set[str]]:
    """Per turn count of valid matches of `kind`, and the set of valid match strings (for redaction)."""
    found = pl.DataFrame({"t": pl.from_arrow(content).fill_null("")}).with_row_index("turn").select(
        "turn", m=pl.col("t").str.extract_all(PATTERNS[kind])).explode("m").drop_nulls("m")
    counts = np.zeros(len(content), dtype=np.int64)
    if found.height == 0:
        return counts, set()
    cands = found["m"].to_list()
    ok = luhn_valid(cands) if kind == "credit_card" else iban_valid(cands)
    counts += np.bincount(found["turn"].to_numpy()[ok], minlength=len(content))
    return counts, {c for c, v in zip(cands, ok) if v}


def _redact_phones(content: pa.Array, has_phone: np.ndarray) -> pa.Array:
    """Phone redaction must skip digit groups of card-like numbers, which RE2 (no look-around)
    cannot express; Python `re` runs only on the few turns that contain a phone number."""
    import re

    if not has_phone.any():
        return content
    pat = re.compile(f"(?P<cc>{PATTERNS['credit_card']})|{PATTERNS['phone']}")
    values = content.to_pylist()
    for i in np.flatnonzero(has_phone):
        values[i] = pat.sub(lambda m: m.group(0) if m.group("cc") else PLACEHOLDERS["phone"], values[i])
    return pa.array(values, pa.string())


@register
@dataclass
class PII(Operator):
    """Columns `pii_count` (hits in the row) and `pii_types` (sorted list of types found).

    mode `flag` keeps rows unchanged, `redact` replaces hits in the messages with typed
    placeholders, `drop` rejects rows with at least `min_count` hits (reason `pii`).
    """

    name = "pii"
    kind = "filter"
    writes = ("pii_count", "pii_types", "messages")

    mode: str = "redact"  # flag | redact | drop
    types: list | None = None  # default: all of PATTERNS
    min_count: int = 1

    def __post_init__(self) -> None:
        if self.mode not in ("flag", "redact", "drop"):
            raise ValueError(f"mode must be flag, redact or drop, got {self.mode!r}")
        if self.types is not None and not isinstance(self.types, list):
            raise ValueError(f"types must be a list of PII types, got {self.types!r}")
        unknown = sorted(set(self.types or []) - set(PATTERNS))
        if unknown:
            raise ValueError(f"types: unknown PII type {unknown[0]!r} (expected some of: {', '.join(PATTERNS)})")

    def process(self, batch: pa.Table) -> Decision:
        n = batch.num_rows
        col = batch.column("messages")
        rows, role, content = msg.flatten(col)
        content = content.fill_null("")
        types = [t for t in PATTERNS if t in (self.types or PATTERNS)]
        per_type: dict[str, np.ndarray] = {}
        literal_hits: dict[str, set[str]] = {}
        series = pl.from_arrow(content)
        for t in types:
            if t in CHECKSUMMED:
                per_type[t], literal_hits[t] = find_checksummed(content, t)
            elif t == "phone":  # digit groups inside a card-like number are not a phone number
                per_type[t] = series.str.replace_all(PATTERNS["credit_card"], "#").str.count_matches(
                    PATTERNS[t]).fill_null(0).to_numpy().astype(np.int64)
            else:
                per_type[t] = series.str.count_matches(PATTERNS[t]).fill_null(0).to_numpy().astype(np.int64)
        row_counts = {t: np.bincount(rows, weights=v, minlength=n).astype(np.int64) for t, v in per_type.items()}
        total = sum(row_counts.values()) if row_counts else np.zeros(n, dtype=np.int64)
        type_lists = [sorted(t for t in types if row_counts[t][i] > 0) if total[i] else [] for i in range(n)]
        out = batch
        if self.mode == "redact" and int(total.sum()) > 0:
            red = content
            for t in types:
                if t in CHECKSUMMED:
                    for hit in sorted(literal_hits[t], key=len, reverse=True):
                        red = pc.replace_substring(red, hit, PLACEHOLDERS[t])
                elif t == "phone":
                    red = _redact_phones(red, per_type[t] > 0)
                else:
                    red = pc.replace_substring_regex(red, PATTERNS[t], PLACEHOLDERS[t])
            out = out.set_column(out.schema.get_field_index("messages"), "messages",
                                 msg.rebuild(col, rows, role, red, n))
        out = set_columns(out, {"pii_count": pa.array(total, pa.int64()),
                                "pii_types": pa.array(type_lists, pa.list_(pa.string()))})
        keep = np.ones(n, dtype=bool) if self.mode != "drop" else total < self.min_count
        return Decision.from_mask(out, keep, "pii", details({"pii_types": type_lists, "pii_count": total}, ~keep))

"""The text a dedup step compares: which turns of a conversation, and how it is normalized.

Two rows are "the same" only relative to a key: the whole conversation, only the first user turn
(same question, different answers), or user + assistant text without the system prompt.
Normalization decides which differences do not count (case, spacing, punctuation, Unicode
compatibility forms). Both are plain options so a user can say exactly what a duplicate is.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from instructkit import messages as msg

#: key name -> (roles, first_only, with role labels)
KEYS = {
    "conversation": (None, False, True),  # every turn, role-tagged ("user: ...")
    "user_assistant": (("user", "assistant"), False, False),  # contents, no system/tool turns
    "first_user": (("user",), True, False),
    "user": (("user",), False, False),
    "assistant": (("assistant",), False, False),
    "last_assistant": (("assistant",), False, False),
}


def _role_tagged(messages: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = msg._chunk(messages)
    n = len(arr)
    rows, role, content = msg.flatten(arr)
    df = pl.DataFrame({"row": rows, "t": pl.from_arrow(role).fill_null("") + ": " + pl.from_arrow(content).fill_null("")})
    joined = df.group_by("row", maintain_order=True).agg(pl.col("t").str.join("\n"))
    full = pl.DataFrame({"row": np.arange(n, dtype=rows.dtype if len(rows) else np.int32)})
    return full.join(joined, on="row", how="left").sort("row")["t"].fill_null("").to_arrow()


def dedup_text(
    messages_column: pa.ChunkedArray | pa.Array,
    key: str = "conversation",
    *,
    lowercase: bool = True,
    collapse_whitespace: bool = True,
    strip_punctuation: bool = False,
    unicode: str = "NFKC",
) -> pa.Array:
    """Per row, the normalized text a dedup step compares (string array, "" for empty rows).

    `key`: conversation | user_assistant | first_user | user | assistant | last_assistant.
    Normalization runs in this order: Unicode form (NFKC folds full-width letters and ligatures),
    lowercase, punctuation/symbol removal, whitespace runs -> one space + trim.
    """
    if key not in KEYS:
        raise ValueError(f"key must be one of {', '.join(KEYS)}, got {key!r}")
    roles, first_only, tagged = KEYS[key]
    if tagged:
        text = _role_tagged(messages_column)
    else:
        text = msg.role_text(messages_column, roles, sep="\n", first_only=first_only, last_only=key == "last_assistant")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.fill_null("")
    if unicode and unicode != "none":
        if unicode not in ("NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"unicode must be NFC, NFKC, NFD, NFKD or none, got {unicode!r}")
        text = pc.utf8_normalize(text, form=unicode)
    if lowercase:
        text = pc.utf8_lower(text)
    if strip_punctuation:
        text = pc.replace_substring_regex(text, r"[\p{P}\p{S}]+", "")
    if collapse_whitespace:
        text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s+", " "))
    return text

"""Gopher-style quality heuristics adapted to instruction data (user and assistant separately).

Web-text heuristics assume long documents; instruction answers are often one word ("Paris"),
so every length/stop-word threshold defaults to *off* or lenient, and repetition is only judged
when there is enough text to repeat. All scores are computed with Polars over the whole batch
(split / explode / group-by), never row by row, and written as columns so thresholds can be
tuned afterwards from an `annotate_only` run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from instructkit.ops.base import Decision, Operator, register
from instructkit.ops.filters._text import details, flag_lists, role_views, set_columns

_STOPWORDS = ["the", "be", "to", "of", "and", "that", "have", "with", "is", "a", "in", "for", "it", "on", "are"]
_STOPWORD_RE = r"(?i)\b(" + "|".join(_STOPWORDS) + r")\b"
_URL = r"https?://\S+|\bwww\.\S+"


def _dup_ngram_frac(text: pl.Series, n: int) -> np.ndarray:
    """Share of word n-grams that occur more than once in the same text (0 when < n words)."""
    # Words are hashed once; an n-gram is a polynomial hash of n consecutive word hashes (UInt64
    # arithmetic wraps), which is far cheaper than concatenating strings.
    words = pl.DataFrame({"w": text.str.to_lowercase().str.extract_all(r"\w+")}).with_row_index("row")
    flat = words.explode("w").drop_nulls("w").with_columns(h=pl.col("w").hash(seed=0))
    # Rows are contiguous after explode, so plain shifts (no per-row window) plus a check that the
    # n-gram's last word is still in the same row replace a costly `.over("row")`.
    gram = pl.col("row").cast(pl.UInt64)
    for k in range(n):
        gram = gram * pl.lit(1_000_003, dtype=pl.UInt64) + pl.col("h").shift(-k)
    grams = flat.select("row", g=gram, same=pl.col("row").shift(-(n - 1)) == pl.col("row")).filter(pl.col("same"))
    per = grams.with_columns(d=pl.col("g").is_duplicated()).group_by("row").agg(pl.col("d").mean())
    out = np.zeros(len(text), dtype=np.float32)
    out[per["row"].to_numpy()] = per["d"].to_numpy()
    return out


def _dup_line_frac(text: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Share of non-empty lines repeated verbatim in the same text, and the number of lines."""
    lines = pl.DataFrame({"l": text.str.split("\n")}).with_row_index("row").explode("l")
    lines = lines.with_columns(pl.col("l").str.strip_chars()).filter(pl.col("l").str.len_chars() > 0)
    per = lines.with_columns(d=pl.struct("row", "l").is_duplicated()).group_by("row").agg(
        pl.col("d").mean(), pl.len().alias("n"))
    frac = np.zeros(len(text), dtype=np.float32)
    cnt = np.zeros(len(text), dtype=np.int64)
    frac[per["row"].to_numpy()] = per["d"].to_numpy()
    cnt[per["row"].to_numpy()] = per["n"].to_numpy()
    return frac, cnt


def heuristic_scores(views: pl.DataFrame, ngram: int = 5) -> dict[str, np.ndarray]:
    u, a = pl.col("user"), pl.col("assistant")
    nonspace = a.str.replace_all(r"\s", "").str.len_chars()
    basic = views.select(
        user_chars=u.str.len_chars(), assistant_chars=a.str.len_chars(),
        user_words=u.str.count_matches(r"\S+"), assistant_words=a.str.count_matches(r"\S+"),
        symbol_ratio=(a.str.count_matches(r"[^\p{L}\p{N}\s]") / nonspace).fill_nan(0.0),
        alpha_ratio=(a.str.count_matches(r"\p{L}") / nonspace).fill_nan(0.0),
        url_ratio=(a.str.extract_all(_URL).list.join("").str.len_chars() / a.str.len_chars()).fill_nan(0.0),
        stopwords=a.str.count_matches(_STOPWORD_RE),
    ).fill_null(0)
    scores = {k: basic[k].to_numpy() for k in basic.columns}
    scores["rep_dup_ngram_frac"] = _dup_ngram_frac(views["assistant"], ngram)
    scores["rep_dup_line_frac"], scores["assistant_lines"] = _dup_line_frac(views["assistant"])
    return scores


@register
@dataclass
class QualityHeuristics(Operator):
    """Length, repetition, symbol, URL and stop-word heuristics; score columns are prefixed `hq_`
    except the repetition ones (`rep_dup_ngram_frac`, `rep_dup_line_frac`)."""

    name = "quality_heuristics"
    kind = "filter"
    writes = ("hq_user_chars", "hq_assistant_chars", "hq_user_words", "hq_assistant_words", "rep_dup_ngram_frac",
              "rep_dup_line_frac", "hq_symbol_ratio", "hq_alpha_ratio", "hq_url_ratio", "hq_stopwords")

    min_user_chars: int = 1
    max_user_chars: int = 100_000
    min_assistant_chars: int = 1
    max_assistant_chars: int = 100_000
    ngram: int = 5
    max_dup_ngram_frac: float = 0.5
    min_words_for_repetition: int = 40
    max_dup_line_frac: float = 0.5
    min_lines_for_repetition: int = 4
    max_symbol_ratio: float = 0.6
    min_chars_for_ratios: int = 40
    max_url_ratio: float = 0.5
    min_stopwords: int = 0  # Gopher uses 2; off by default because short answers have none

    def process(self, batch: pa.Table) -> Decision:
        s = heuristic_scores(role_views(batch), self.ngram)
        long_enough = s["assistant_chars"] >= self.min_chars_for_ratios
        flags = {
            "too_short_user": s["user_chars"] < self.min_user_chars,
            "too_long_user": s["user_chars"] > self.max_user_chars,
            "too_short_assistant": s["assistant_chars"] < self.min_assistant_chars,
            "too_long_assistant": s["assistant_chars"] > self.max_assistant_chars,
            "repetition": (s["assistant_words"] >= self.min_words_for_repetition)
            & (s["rep_dup_ngram_frac"] > self.max_dup_ngram_frac),
            "repeated_lines": (s["assistant_lines"] >= self.min_lines_for_repetition)
            & (s["rep_dup_line_frac"] > self.max_dup_line_frac),
            "high_symbol_ratio": long_enough & (s["symbol_ratio"] > self.max_symbol_ratio),
            "high_url_ratio": long_enough & (s["url_ratio"] > self.max_url_ratio),
            "few_stopwords": s["stopwords"] < self.min_stopwords,
        }
        _, reason = flag_lists(flags, batch.num_rows)
        cols = {
            "hq_user_chars": pa.array(s["user_chars"], pa.int64()),
            "hq_assistant_chars": pa.array(s["assistant_chars"], pa.int64()),
            "hq_user_words": pa.array(s["user_words"], pa.int64()),
            "hq_assistant_words": pa.array(s["assistant_words"], pa.int64()),
            "rep_dup_ngram_frac": pa.array(s["rep_dup_ngram_frac"], pa.float32()),
            "rep_dup_line_frac": pa.array(s["rep_dup_line_frac"], pa.float32()),
            "hq_symbol_ratio": pa.array(s["symbol_ratio"], pa.float32()),
            "hq_alpha_ratio": pa.array(s["alpha_ratio"], pa.float32()),
            "hq_url_ratio": pa.array(s["url_ratio"], pa.float32()),
            "hq_stopwords": pa.array(s["stopwords"], pa.int64()),
        }
        out = set_columns(batch, cols)
        keep = reason == None  # noqa: E711 - elementwise on object array
        why = details({k: np.round(s[k], 4) if s[k].dtype.kind == "f" else s[k] for k in (
            "user_chars", "assistant_chars", "rep_dup_ngram_frac", "rep_dup_line_frac", "symbol_ratio", "url_ratio",
            "stopwords")}, ~keep)
        return Decision.from_mask(out, keep, reason, why)

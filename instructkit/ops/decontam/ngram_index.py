"""A sorted array of 64-bit word n-gram hashes over benchmark items, queried a whole batch at a time.

Tokens and n-gram hashes are the ones MinHash dedup uses (`minhash.shingle_hashes`, 64-bit
variant), so "the same words" means the same thing in both steps: lowercase, punctuation ignored.
Lookup is one `np.searchsorted` of every n-gram of the batch against the sorted index, so the
cost is O(batch n-grams * log(index size)) with no Python per row. At 64 bits a false match
between 10^8 training n-grams and 10^7 benchmark n-grams has probability ~5e-5.

Benchmark texts shorter than `ngram` words (but at least `min_ngram`) are indexed whole, and
training text is then also checked at those shorter lengths, so a short question copied verbatim
is still caught; texts shorter than `min_ngram` words are skipped (too generic to mean leakage).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from instructkit.ops.dedup.minhash import shingle_hashes, shingle_text
from instructkit.ops.decontam.tasks import Item


@dataclass
class Matches:
    """Per query row: matched n-gram count, and the first match's item index and n-gram ordinal."""

    count: np.ndarray  # int64 [n]
    item: np.ndarray  # int64 [n], -1 when no match
    ordinal: np.ndarray  # int64 [n], shingle ordinal within the item


class NgramIndex:
    def __init__(self, items: list[Item], ngram: int = 13, min_ngram: int = 10):
        if ngram < 1 or min_ngram < 1 or min_ngram > ngram:
            raise ValueError(f"need 1 <= min_ngram <= ngram, got ngram={ngram}, min_ngram={min_ngram}")
        self.items = items
        self.ngram = ngram
        self.min_ngram = min_ngram
        texts = pa.array([it.text for it in items], pa.large_string())
        self.norm = shingle_text(texts)
        h, off = shingle_hashes(self.norm, ngram, normalized=True, bits=64)
        n_tok = self._token_counts(self.norm)
        self.skipped = int(((n_tok > 0) & (n_tok < min_ngram)).sum())
        per_item = np.diff(off)
        item_of = np.repeat(np.arange(len(items), dtype=np.int64), per_item)
        ordinal = np.arange(len(h), dtype=np.int64) - np.repeat(off[:-1], per_item)
        ok = n_tok[item_of] >= min_ngram
        self.short_lengths = sorted({int(k) for k in n_tok[(n_tok >= min_ngram) & (n_tok < ngram)]})
        h, item_of, ordinal = h[ok], item_of[ok], ordinal[ok]
        order = np.argsort(h, kind="stable")
        self.hashes = h[order]
        self.item_of = item_of[order]
        self.ordinal = ordinal[order]

    @staticmethod
    def _token_counts(norm: pa.Array) -> np.ndarray:
        import pyarrow.compute as pc

        return pc.list_value_length(pc.utf8_split_whitespace(norm)).to_numpy(zero_copy_only=False).astype(np.int64)

    def __len__(self) -> int:
        return len(self.hashes)

    def _lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(self.hashes) == 0 or len(h) == 0:
            return np.zeros(len(h), bool), np.zeros(len(h), np.int64)
        at = np.searchsorted(self.hashes, h)
        at_c = np.minimum(at, len(self.hashes) - 1)
        return self.hashes[at_c] == h, at_c

    def query(self, texts: pa.Array) -> Matches:
        """Matched benchmark n-grams of every text (counted over all checked lengths)."""
        norm = shingle_text(texts)
        n = len(norm)
        count = np.zeros(n, np.int64)
        first_item = np.full(n, -1, np.int64)
        first_ord = np.full(n, -1, np.int64)
        n_tok = self._token_counts(norm)
        for k in [self.ngram, *self.short_lengths]:
            h, off = shingle_hashes(norm, k, normalized=True, bits=64)
            per_doc = np.diff(off)
            doc = np.repeat(np.arange(n, dtype=np.int64), per_doc)
            hit, at = self._lookup(h)
            # a text shorter than k yields one shorter shingle; it is checked in its own length's pass
            hit &= n_tok[doc] >= k
            if not hit.any():
                continue
            hd = doc[hit]
            count += np.bincount(hd, minlength=n)
            # first hit per row (hits are in text order within a row)
            uniq, first = np.unique(hd, return_index=True)
            new = first_item[uniq] < 0
            idx = at[hit][first[new]]
            first_item[uniq[new]] = self.item_of[idx]
            first_ord[uniq[new]] = self.ordinal[idx]
        return Matches(count, first_item, first_ord)

    def ngram_text(self, item: int, ordinal: int) -> str:
        """The normalized n-gram `ordinal` of item `item` (for reject details)."""
        toks = [t for t in self.norm[item].as_py().split(" ") if t]
        if len(toks) < self.ngram:
            return " ".join(toks)
        return " ".join(toks[ordinal : ordinal + self.ngram])

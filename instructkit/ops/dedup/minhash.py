"""MinHash signatures over whole Arrow batches, bit-compatible with datasketch's "affine32" scheme.

Pipeline of pure batch-level functions (a distributed engine can call each stage on its own):

    shingle_text(texts)            -> normalized text (lowercase, punctuation -> space)
    shingle_hashes(texts, ...)     -> one 32-bit hash per shingle + per-document offsets
    signatures(texts, ...)         -> uint32 [n, num_perm]   (= datasketch hashvalues)

How a shingle is hashed (all numpy, no per-document Python):
  1. every *token* (a word, or one character in `char_ngrams` mode) is hashed once from the
     text's byte buffer: ``t = fmix64(poly(token bytes) ^ K)`` (see hashing.py);
  2. an n-gram's hash folds its token hashes: ``acc = ((t1*Q + t2)*Q + t3)...``, then
     ``h = fmix64(acc + k) >> 32`` with k = number of tokens in the shingle;
  3. datasketch's affine32 permutation: ``min over shingles of (a_k * fmix32(h) + b_k) mod 2**32``
     with (a, b) drawn exactly as datasketch draws them from ``RandomState(seed)``.
`hash_function` (word shingles) and `char_hash_function` compute step 1-2 for one shingle in
pure Python, so ``datasketch.MinHash(num_perm, seed, scheme="affine32", hashfunc=hash_function)``
fed with `shingles(text)` gives exactly our signature, and datasketch's MinHashLSH (Redis
storage included) can index our signatures via ``MinHash(..., hashvalues=sig, scheme="affine32")``.

Documents with fewer than `ngram` tokens get one shingle made of all their tokens (so short
texts still match identical short texts); documents with no token get the empty signature
(all 0xFFFFFFFF, what datasketch gives an empty MinHash) and are never LSH candidates.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.ops.dedup.hashing import (
    K_TOKEN,
    MASK64,
    bytes_of,
    fmix32,
    fmix64,
    fmix64_int,
    poly_bytes_int,
    range_poly,
)

#: Odd multiplier that folds token hashes into an n-gram hash.
Q_FOLD = 0xD6E8FEB86659FD93
EMPTY = np.uint32(0xFFFFFFFF)
#: Unicode letters, digits and combining marks form words; everything else separates them.
_NON_WORD = r"[^\p{L}\p{N}\p{M}]+"
#: Text is tokenized in groups of documents of about this many bytes (bounds temporary memory).
_GROUP_BYTES = 1 << 20
#: Shingles per block in the permutation step ([block, num_perm] uint32 temporary).
_BLOCK_SHINGLES = 1 << 14


def _as_string_array(texts: pa.Array | pa.ChunkedArray | Sequence[str]) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), pa.large_string())
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.large_string())
    return texts


def _ascii_table() -> np.ndarray:
    """Byte map for ASCII: A-Z -> a-z, letters/digits kept, every other ASCII byte -> space.
    Bytes >= 0x80 map to themselves (rows holding them go through the Unicode regex instead)."""
    lut = np.arange(256, dtype=np.uint8)
    ascii_ = np.arange(128)
    word = ((ascii_ >= 48) & (ascii_ <= 57)) | ((ascii_ >= 65) & (ascii_ <= 90)) | ((ascii_ >= 97) & (ascii_ <= 122))
    lut[:128][~word] = 0x20
    lut[65:91] += 32
    return lut


_LUT = _ascii_table()


def shingle_text(texts: pa.Array | Sequence[str], char_ngrams: bool = False) -> pa.Array:
    """The normalized text shingles are cut from: lowercase, and every character that is not a
    Unicode letter, digit or combining mark replaced by a space.

    Tokens are then the space-separated words (or, with `char_ngrams`, the non-space characters).
    Pure-ASCII rows are mapped with one byte lookup table over the whole buffer (the regex engine
    is ~40x slower); rows with any non-ASCII byte use the Unicode regex. Both give the same
    tokens. `char_ngrams` is accepted for symmetry: the normalized text is the same.
    """
    del char_ngrams
    arr = _as_string_array(texts).fill_null("")
    data, off = bytes_of(arr)
    lo, hi = int(off[0]), int(off[-1])
    non_ascii = np.zeros(len(arr), dtype=bool)
    high = np.flatnonzero(data[lo:hi] >= 0x80) + lo
    non_ascii[np.searchsorted(off, high, side="right") - 1] = True
    mapped = _LUT[data[lo:hi]]
    out = pa.LargeStringArray.from_buffers(
        len(arr), pa.py_buffer((off - lo).astype(np.int64)), pa.py_buffer(mapped)
    )
    if non_ascii.any():
        mask = pa.array(non_ascii)
        uni = pc.replace_substring_regex(pc.utf8_lower(arr.filter(mask)), _NON_WORD, " ")
        out = pc.replace_with_mask(out, mask, uni.cast(pa.large_string()))
    return out


def _token_ranges(data: np.ndarray, offsets: np.ndarray, char_ngrams: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, doc) of every token of every document, from the normalized byte buffer."""
    lo, hi = int(offsets[0]), int(offsets[-1])
    buf = data[lo:hi]
    if char_ngrams:
        starts = np.flatnonzero((buf & 0xC0) != 0x80).astype(np.int64)
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        if len(starts):
            ends[-1] = len(buf)
        keep = buf[starts] != 0x20
        starts, ends = starts[keep] + lo, ends[keep] + lo
        return starts, ends, _doc_of(starts, offsets)
    word = buf != 0x20
    nonempty = offsets[:-1] < offsets[1:]
    prev = np.empty_like(word)
    nxt = np.empty_like(word)
    if len(word):
        prev[0] = False
        prev[1:] = word[:-1]
        nxt[-1] = False
        nxt[:-1] = word[1:]
    prev[offsets[:-1][nonempty] - lo] = False  # a token never continues across documents
    nxt[offsets[1:][nonempty] - lo - 1] = False
    starts = np.flatnonzero(word & ~prev).astype(np.int64) + lo
    ends = np.flatnonzero(word & ~nxt).astype(np.int64) + (lo + 1)
    return starts, ends, _doc_of(starts, offsets)


def _doc_of(starts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Document index of each (sorted) token start: n_docs searches + a repeat, instead of one
    binary search per token."""
    counts = np.diff(np.searchsorted(starts, offsets, side="left"))
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), counts)


def _shingles_from_tokens(
    t: np.ndarray, doc: np.ndarray, n_docs: int, ngram: int, bits: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Fold token hashes into n-gram hashes. Returns (hash per shingle, offsets[n_docs+1]).

    bits=32 gives the MinHash input (top half of the 64-bit mix); bits=64 the full value, for
    exact set lookups (decontamination) where 32 bits would collide too often."""
    counts = np.bincount(doc, minlength=n_docs).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)])
    n_tok = len(t)
    q = np.uint64(Q_FOLD)
    acc = t.copy()
    short = (counts > 0) & (counts < ngram)
    short_docs = np.flatnonzero(short)
    short_val = np.zeros(len(short_docs), dtype=np.uint64)
    if len(short_docs):
        sel = counts[short_docs] == 1
        short_val[sel] = acc[first[short_docs[sel]]]
    for j in range(1, ngram):
        if j < n_tok:
            head = acc[: n_tok - j]
            np.multiply(head, q, out=head)
            np.add(head, t[j:], out=head)
        if len(short_docs):
            sel = counts[short_docs] == j + 1
            short_val[sel] = acc[first[short_docs[sel]]]
    pos = np.arange(n_tok, dtype=np.int64)
    valid = pos + ngram <= first[1:][doc] if n_tok else np.zeros(0, bool)
    k = np.full(n_tok, ngram, dtype=np.uint64)
    if len(short_docs):
        at = first[short_docs]
        acc[at] = short_val
        k[at] = counts[short_docs].astype(np.uint64)
        valid[at] = True
    h = fmix64(acc[valid] + k[valid])
    if bits == 32:
        h = (h >> np.uint64(32)).astype(np.uint32)
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.where(counts > 0, 1, 0))
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    return h, offsets


def shingle_hashes(
    texts: pa.Array | Sequence[str], ngram: int = 5, char_ngrams: bool = False, normalized: bool = False,
    bits: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """One uint32 hash per shingle of every text: (hashes, offsets[n+1]) (CSR layout).

    These are exactly ``hash_function(s)`` for each ``s in shingles(text)`` (duplicates kept,
    in text order). Pass ``normalized=True`` when `texts` is already `shingle_text` output.
    """
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    arr = _as_string_array(texts)
    if not normalized:
        arr = shingle_text(arr, char_ngrams)
    data, offsets = bytes_of(arr)
    n = len(offsets) - 1
    parts_h: list[np.ndarray] = []
    parts_c: list[np.ndarray] = []
    i = 0
    while i < n:  # groups of documents of ~_GROUP_BYTES bound the temporaries
        j = int(np.searchsorted(offsets, offsets[i] + _GROUP_BYTES, side="right")) - 1
        j = min(max(j, i + 1), n)
        off = offsets[i : j + 1]
        starts, ends, doc = _token_ranges(data, off, char_ngrams)
        t = fmix64(range_poly(data, starts, ends) ^ np.uint64(K_TOKEN))
        h, so = _shingles_from_tokens(t, doc, j - i, ngram, bits)
        parts_h.append(h)
        parts_c.append(np.diff(so))
        i = j
    if not parts_h:
        return np.zeros(0, np.uint32 if bits == 32 else np.uint64), np.zeros(1, np.int64)
    counts = np.concatenate(parts_c)
    return np.concatenate(parts_h), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) uint32 affine parameters datasketch 2.x draws for scheme="affine32".

    Same generator and same draw order: a is odd in [1, 2**32), b in [0, 2**32).
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def signatures_from_hashes(
    hashes: np.ndarray, offsets: np.ndarray, num_perm: int = 128, seed: int = 1
) -> np.ndarray:
    """MinHash signatures (uint32 [n, num_perm]) from CSR shingle hashes (see `shingle_hashes`)."""
    a, b = permutations(num_perm, seed)
    n = len(offsets) - 1
    sig = np.full((n, num_perm), EMPTY, dtype=np.uint32)
    counts = np.diff(offsets)
    nonempty = np.flatnonzero(counts > 0)
    if len(nonempty) == 0:
        return sig
    x = fmix32(hashes.astype(np.uint32, copy=False))
    ne_start = offsets[nonempty]  # strictly increasing
    total = len(x)
    a_col, b_col = a[:, None], b[:, None]
    # [num_perm, block] layout: the min-reduction then runs over contiguous memory per
    # permutation, ~5x faster in numpy than the [block, num_perm] layout.
    block = np.empty((num_perm, min(_BLOCK_SHINGLES, total)), dtype=np.uint32)
    c0 = 0
    while c0 < total:
        c1 = min(c0 + _BLOCK_SHINGLES, total)
        d_lo = int(np.searchsorted(ne_start, c0, side="right")) - 1
        d_hi = int(np.searchsorted(ne_start, c1, side="left"))  # exclusive
        local = ne_start[d_lo:d_hi] - c0
        local[0] = 0
        m = block[:, : c1 - c0]
        np.multiply(a_col, x[None, c0:c1], out=m)
        np.add(m, b_col, out=m)
        red = np.minimum.reduceat(m, local, axis=1).T
        rows = nonempty[d_lo:d_hi]
        # the first document may have started in the previous block: combine with it
        red[0] = np.minimum(red[0], sig[rows[0]])
        sig[rows] = red
        c0 = c1
    return sig


def signatures(
    texts: pa.Array | Sequence[str],
    num_perm: int = 128,
    seed: int = 1,
    ngram: int = 5,
    char_ngrams: bool = False,
) -> np.ndarray:
    """MinHash signature of every text: uint32 [n, num_perm], vectorized over the whole batch.

    Equal, bit for bit, to ``datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine32",
    hashfunc=hash_function).update_batch(shingles(text, ngram))`` hashvalues (use
    `char_hash_function` with ``char_ngrams=True``). Pure function of its inputs: safe to call
    per batch from any worker.
    """
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    h, off = shingle_hashes(texts, ngram, char_ngrams)
    return signatures_from_hashes(h, off, num_perm, seed)


# ------------------------------------------------------------------ pure-Python reference side
def _token_hash_int(token: bytes) -> int:
    return fmix64_int(poly_bytes_int(token) ^ K_TOKEN)


def _fold_int(tokens: Sequence[bytes]) -> int:
    acc = 0
    for i, tok in enumerate(tokens):
        th = _token_hash_int(tok)
        acc = th if i == 0 else (acc * Q_FOLD + th) & MASK64
    return fmix64_int((acc + len(tokens)) & MASK64) >> 32


def hash_function(shingle: bytes | str) -> int:
    """32-bit hash of one *word* shingle (tokens joined by single spaces, as `shingles` returns).

    Give it to datasketch as ``hashfunc=`` to get our signatures from datasketch's MinHash.
    """
    if isinstance(shingle, str):
        shingle = shingle.encode("utf-8")
    return _fold_int([t for t in shingle.split(b" ") if t])


def char_hash_function(shingle: bytes | str) -> int:
    """32-bit hash of one *character* shingle (`shingles(..., char_ngrams=True)`)."""
    if isinstance(shingle, bytes):
        shingle = shingle.decode("utf-8")
    return _fold_int([c.encode("utf-8") for c in shingle])


def shingles(text: str, ngram: int = 5, char_ngrams: bool = False) -> list[bytes]:
    """The shingles of one text, as bytes, in the form `hash_function` expects (reference/interop).

    Normalization is the vectorized `shingle_text`, so this can never drift from `signatures`.
    """
    norm = shingle_text(pa.array([text], pa.large_string()), char_ngrams)[0].as_py()
    if char_ngrams:
        toks = [c for c in norm if c != " "]
        sep = ""
    else:
        toks = [t for t in norm.split(" ") if t]
        sep = " "
    if not toks:
        return []
    if len(toks) < ngram:
        return [sep.join(toks).encode("utf-8")]
    return [sep.join(toks[i : i + ngram]).encode("utf-8") for i in range(len(toks) - ngram + 1)]


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise MinHash Jaccard estimate (fraction of equal slots), float32."""
    return (np.asarray(sig_a) == np.asarray(sig_b)).mean(axis=-1).astype(np.float32)

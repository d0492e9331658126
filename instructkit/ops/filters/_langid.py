"""Fast, deterministic language ID from langdetect's own n-gram profiles.

`langdetect.detect` walks each text char by char in Python and then samples n-grams at random
(7 trials, random smoothing), which is slow (a few hundred texts/s) and not reproducible unless
the global seed is set. The model underneath is naive Bayes over character 1-3-grams, so we
score *every* n-gram of a bounded sample of each text at once:

1. one Arrow regex pass removes URLs / e-mails (as langdetect does), then the whole batch is
   decoded into a single numpy array of code points;
2. langdetect's per-character normalisation (punctuation -> space, CJK folding, kana, ...) is a
   lookup table over the BMP, built once from `NGram.normalize` itself so it cannot drift;
3. n-gram keys are packed into int64 (every profile character is in the BMP, 16 bits each),
   looked up in the sorted profile vocabulary with `searchsorted`;
4. a sparse (texts x n-grams) count matrix times the (n-grams x languages) log-probability
   matrix gives every text's log-likelihood in one product.

No randomness anywhere: the same text gives the same answer in every batch, run and process.
Using all n-grams instead of a random sample is the limit langdetect's sampler approximates,
so accuracy does not drop (see docs/benchmarks/filters.md).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

UNKNOWN = "unknown"
_SPACE = 0x20
_ASTRAL = 0xFFFF  # code points above the BMP: never in a profile, kept as a non-space letter
_URL_RE = r"https?://[-_.?&~;+=/#0-9A-Za-z]+"
_MAIL_RE = r"[-_.0-9A-Za-z]+@[-_0-9A-Za-z]+[-_.0-9A-Za-z]+"
_BASE_FREQ = 10000.0  # langdetect's smoothing denominator (alpha / BASE_FREQ)


@lru_cache(maxsize=1)
def _char_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalised code point, is-upper after normalisation, Latin-Extended-Additional) over the BMP."""
    from langdetect.utils.ngram import NGram

    norm = np.empty(0x10000, dtype=np.uint16)
    upper = np.zeros(0x10000, dtype=bool)
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            norm[cp] = _SPACE
            continue
        ch = NGram.normalize(chr(cp))
        norm[cp] = ord(ch)
        upper[cp] = ch.isupper()
    lat_ext_add = np.zeros(0x10000, dtype=bool)
    lat_ext_add[0x1E00:0x1F00] = True
    return norm, upper, lat_ext_add


def _profiles_dir() -> str:
    import langdetect

    return os.path.join(os.path.dirname(langdetect.__file__), "profiles")


def _key(word: str) -> int:
    k = 0
    for ch in word:
        k = (k << 16) | ord(ch)
    return k | (len(word) << 48)  # length tag: "a" and "\0a" never collide


@dataclass
class LanguageModel:
    """Sorted n-gram keys, their log-probabilities per language, and the language codes."""

    keys: np.ndarray  # int64, sorted
    logp: np.ndarray  # float32 [n_keys, n_langs]
    langs: list[str]

    def __post_init__(self) -> None:
        self.key_series = pl.Series("k", self.keys)
        self.row_series = pl.Series("i", np.arange(len(self.keys), dtype=np.int32))


def load_model(alpha: float = 0.5) -> LanguageModel:
    """Read langdetect's shipped profiles into a dense log-probability matrix (once per process)."""
    return _load_model(float(alpha))


@lru_cache(maxsize=4)
def _load_model(alpha: float) -> LanguageModel:
    pdir = _profiles_dir()
    names = sorted(os.listdir(pdir))
    langs: list[str] = []
    index: dict[int, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for j, fname in enumerate(names):
        with open(os.path.join(pdir, fname), encoding="utf-8") as fh:
            prof = json.load(fh)
        langs.append(prof["name"])
        n_words = prof["n_words"]
        for word, freq in prof["freq"].items():
            n = len(word)
            if not 1 <= n <= 3:
                continue
            k = _key(word)
            i = index.setdefault(k, len(index))
            rows.append(i)
            cols.append(j)
            vals.append(freq / n_words[n - 1])
    prob = np.zeros((len(index), len(langs)), dtype=np.float64)
    prob[np.asarray(rows), np.asarray(cols)] = np.asarray(vals)
    keys = np.fromiter(index.keys(), dtype=np.int64, count=len(index))
    order = np.argsort(keys, kind="stable")
    logp = np.log(prob[order] + alpha / _BASE_FREQ).astype(np.float32)
    return LanguageModel(keys=keys[order], logp=logp, langs=langs)


def _codepoints(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """All texts as one code point array (uint32) plus the number of code points per text."""
    texts = texts.fill_null("")
    n = len(texts)
    lengths = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    if n == 0 or lengths.sum() == 0:
        return np.zeros(0, dtype=np.uint32), lengths
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32, count=texts.offset + n + 1)[texts.offset:]
    raw = texts.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
    cps = np.frombuffer(raw.decode("utf-8", errors="replace").encode("utf-32-le"), dtype=np.uint32)
    if len(cps) != lengths.sum():  # only possible with invalid UTF-8 in the buffer: decode per text
        base = int(offsets[0])
        strs = [raw[offsets[i] - base:offsets[i + 1] - base].decode("utf-8", errors="replace") for i in range(n)]
        lengths = np.fromiter((len(s) for s in strs), dtype=np.int64, count=n)
        cps = np.frombuffer("".join(strs).encode("utf-32-le"), dtype=np.uint32)
    return cps, lengths


def detect(texts: pa.Array | pa.ChunkedArray, sample_chars: int = 1000, alpha: float = 0.5,
           evidence_cap: float = 30.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Language code, its probability and the number of n-gram features for each text.

    Only the first `sample_chars` characters (after URL/e-mail removal) are scored: language is
    decided in a few sentences, and the bound keeps 1 MB texts as cheap as short ones.
    Texts without any known n-gram get `"unknown"` with probability 0.

    The probability is a softmax over log-likelihoods rescaled to at most `evidence_cap`
    n-grams of evidence: plain naive Bayes is ~1.0 for anything longer than a sentence, which
    makes a `min_prob` threshold useless; rescaled, it measures how *clearly* the text is in
    that language per n-gram (a list of Italian names inside English stays ambiguous), while
    the argmax is unchanged.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    texts = texts.cast(pa.string()).fill_null("")
    n = len(texts)
    model = load_model(alpha)
    langs_out = np.full(n, UNKNOWN, dtype=object)
    probs = np.zeros(n, dtype=np.float32)
    if n == 0:
        return langs_out, probs, np.zeros(0, dtype=np.int64)
    # Bound the work twice: a generous raw slice before the regexes, the exact sample after.
    texts = pc.utf8_slice_codeunits(texts, 0, sample_chars * 4)
    texts = pc.replace_substring_regex(texts, _URL_RE, " ")
    texts = pc.replace_substring_regex(texts, _MAIL_RE, " ")
    texts = pc.utf8_slice_codeunits(texts, 0, sample_chars)
    cps, lengths = _codepoints(texts)
    norm_tab, upper_tab, lat_ext_add = _char_tables()
    tid = np.repeat(np.arange(n, dtype=np.int64), lengths)

    # langdetect drops Latin letters from texts written mostly in another script.
    bmp = np.minimum(cps, 0xFFFF).astype(np.int64)
    latin = (cps >= 0x41) & (cps <= 0x7A)
    non_latin = (cps >= 0x300) & ~lat_ext_add[bmp]
    lat_n = np.bincount(tid, weights=latin, minlength=n)
    non_n = np.bincount(tid, weights=non_latin, minlength=n)
    drop_latin = (lat_n * 2 < non_n)[tid] & latin
    cps, tid, bmp = cps[~drop_latin], tid[~drop_latin], bmp[~drop_latin]

    chars = np.where(cps > 0xFFFF, _ASTRAL, norm_tab[bmp]).astype(np.int64)
    # One leading space per text (langdetect's n-gram buffer starts as " "), then collapse runs.
    counts = np.bincount(tid, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(chars), dtype=np.int64) - np.repeat(starts, counts) + np.repeat(starts + np.arange(n), counts) + 1
    seq = np.full(len(chars) + n, _SPACE, dtype=np.int64)
    seq[pos] = chars
    stid = np.repeat(np.arange(n, dtype=np.int64), counts + 1)
    space = seq == _SPACE
    dup_space = np.zeros(len(seq), dtype=bool)
    dup_space[1:] = space[1:] & space[:-1] & (stid[1:] == stid[:-1])
    seq, stid, space = seq[~dup_space], stid[~dup_space], space[~dup_space]

    up = upper_tab[np.minimum(seq, 0xFFFF)] & (seq <= 0xFFFF)
    cap = np.zeros(len(seq), dtype=bool)  # langdetect skips n-grams inside ALL-CAPS words
    cap[1:] = up[1:] & up[:-1] & (stid[1:] == stid[:-1])

    m = len(seq)
    feats_t: list[np.ndarray] = []
    feats_k: list[np.ndarray] = []
    ok1 = ~space & ~cap
    feats_t.append(stid[ok1])
    feats_k.append(seq[ok1] | (1 << 48))
    if m > 1:
        same = stid[1:] == stid[:-1]
        ok2 = same & ~cap[1:]
        feats_t.append(stid[1:][ok2])
        feats_k.append(((seq[:-1] << 16) | seq[1:])[ok2] | (2 << 48))
    if m > 2:
        same3 = (stid[2:] == stid[:-2])
        ok3 = same3 & ~space[1:-1] & ~cap[2:]
        feats_t.append(stid[2:][ok3])
        feats_k.append(((seq[:-2] << 32) | (seq[1:-1] << 16) | seq[2:])[ok3] | (3 << 48))
    ft = np.concatenate(feats_t)
    fk = np.concatenate(feats_k)
    # Hash lookup (Polars) beats a binary search over the 88k sorted keys by ~4x.
    idx = pl.Series(fk).replace_strict(model.key_series, model.row_series, default=-1,
                                       return_dtype=pl.Int32).to_numpy()
    known = idx >= 0
    ft, idx = ft[known], idx[known]
    n_feat = np.bincount(ft, minlength=n).astype(np.int64)
    if len(ft) == 0:
        return langs_out, probs, n_feat

    from scipy import sparse

    # ft is three sorted runs (1-, 2-, 3-grams): a stable sort merges them in linear time, and
    # the CSR matrix is then built directly, without scipy's COO sort.
    order = np.argsort(ft, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(n_feat)]).astype(np.int64)
    counts_m = sparse.csr_matrix((np.ones(len(ft), dtype=np.float32), idx[order].astype(np.int32), indptr),
                                 shape=(n, len(model.keys)))
    scores = np.asarray(counts_m @ model.logp, dtype=np.float64)
    best = scores.argmax(axis=1)
    top = scores[np.arange(n), best]
    # softmax probability of the winner, computed stably
    scale = np.minimum(1.0, evidence_cap / np.maximum(n_feat, 1))[:, None]
    prob = 1.0 / np.exp((scores - top[:, None]) * scale).sum(axis=1)
    has = n_feat > 0
    lang_arr = np.asarray(model.langs, dtype=object)
    langs_out[has] = lang_arr[best[has]]
    probs[has] = prob[has]
    return langs_out, probs, n_feat

"""Signatures equal datasketch's affine32 MinHash bit for bit, on random and real text."""
from __future__ import annotations

import json
from pathlib import Path

import datasketch
import numpy as np
import pyarrow as pa
import pytest

from instructkit.ops.dedup import hashing
from instructkit.ops.dedup import minhash as mh

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "dedup" / "real_texts.jsonl"


def _datasketch(texts, num_perm, seed, ngram, char_ngrams=False):
    fn = mh.char_hash_function if char_ngrams else mh.hash_function
    out = []
    for t in texts:
        m = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=fn)
        m.update_batch(mh.shingles(t, ngram, char_ngrams))
        out.append(m.hashvalues)
    return np.array(out, dtype=np.uint32)


def _random_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    alphabet = list("abcdefghij ABC  ,.!?-'\n\t") + list("éüßçñ") + list("東京タワー你好世界") + ["\u0301", "ः", "🙂"]
    return ["".join(rng.choice(alphabet, rng.integers(0, 120))) for _ in range(n)]


@pytest.mark.parametrize("num_perm,seed,ngram", [(128, 1, 5), (64, 42, 3), (16, 7, 1), (256, 0, 13)])
def test_random_texts_bit_for_bit(num_perm, seed, ngram):
    texts = _random_texts(150, seed) + ["", "   ", "!!!", "one", "two words"]
    ours = mh.signatures(texts, num_perm=num_perm, seed=seed, ngram=ngram)
    assert ours.dtype == np.uint32 and ours.shape == (len(texts), num_perm)
    np.testing.assert_array_equal(ours, _datasketch(texts, num_perm, seed, ngram))


def test_real_multilingual_texts_bit_for_bit():
    texts = [json.loads(line)["text"] for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    assert len(texts) >= 80
    np.testing.assert_array_equal(mh.signatures(texts, 128, 1, 5), _datasketch(texts, 128, 1, 5))
    np.testing.assert_array_equal(mh.signatures(texts, 64, 3, 3, char_ngrams=True),
                                  _datasketch(texts, 64, 3, 3, char_ngrams=True))


def test_multi_slice_and_multi_block_paths(monkeypatch):
    """Force tiny tokenization groups, byte slices and permutation blocks: same result."""
    texts = _random_texts(60, 3) + ["word " * 500]
    want = mh.signatures(texts, 32, 1, 5)
    monkeypatch.setattr(mh, "_GROUP_BYTES", 50)
    monkeypatch.setattr(mh, "_BLOCK_SHINGLES", 7)
    monkeypatch.setattr(hashing, "MAX_SLICE_BYTES", 40)
    np.testing.assert_array_equal(mh.signatures(texts, 32, 1, 5), want)
    np.testing.assert_array_equal(want, _datasketch(texts, 32, 1, 5))


def test_shingles_short_empty_and_normalization():
    assert mh.shingles("", 5) == []
    assert mh.shingles("?!", 5) == []
    assert mh.shingles("Hello, World!", 5) == [b"hello world"]
    assert mh.shingles("a b c", 2) == [b"a b", b"b c"]
    assert mh.shingles("ab c", 2, char_ngrams=True) == [b"ab", b"bc"]
    # empty documents get datasketch's empty signature
    assert (mh.signatures(["", "..."], 8, 1, 5) == np.uint32(0xFFFFFFFF)).all()


def test_one_megabyte_record_and_accepts_arrow_input():
    rng = np.random.default_rng(5)
    big = " ".join(f"w{i}" for i in rng.integers(0, 50_000, 170_000))[:1_000_000]  # 1 MB, many distinct shingles
    arr = pa.array([big, None, "short", big[:100_000]], pa.string())
    sig = mh.signatures(arr, 16, 1, 5)
    assert sig.shape == (4, 16)
    assert (sig[1] == np.uint32(0xFFFFFFFF)).all()  # null text behaves as empty
    # datasketch (Python hash per shingle) on the 100 kB prefix keeps the test fast
    np.testing.assert_array_equal(sig[[2, 3]], _datasketch(["short", big[:100_000]], 16, 1, 5))
    # the 1 MB text: the two-step path gives the same signature, with one shingle per 5-word window
    h, off = mh.shingle_hashes([big], 5)
    np.testing.assert_array_equal(mh.signatures_from_hashes(h, off, 16, 1)[0], sig[0])
    assert off[-1] == len(big.split()) - 4


def test_similar_texts_have_similar_signatures():
    base = " ".join(f"w{i}" for i in range(200))
    near = base.replace("w100 ", "x100 ")
    far = " ".join(f"z{i}" for i in range(200))
    s = mh.signatures([base, near, far], 256, 1, 5)
    assert mh.estimated_jaccard(s[0], s[1]) > 0.85
    assert mh.estimated_jaccard(s[0], s[2]) < 0.05

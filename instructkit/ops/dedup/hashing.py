"""Vectorized, stable hashes of byte ranges and of integer arrays (numpy only, no per-row Python).

Why our own hash instead of xxhash/polars: dedup needs a hash that is (1) computed for tens of
millions of tokens per second without a Python call per token, (2) stable across library
versions (saved indexes and datasketch interop depend on it; polars documents its `hash` as
unstable), and (3) re-implementable in a few lines of pure Python so users can feed the *same*
values to datasketch.

The byte-range hash is a polynomial hash modulo 2**64 followed by the 64-bit MurmurHash3
finalizer: ``fmix64(sum(byte[i] * P**i) ^ K)``.  The sum for every range of a big buffer comes
from one prefix sum: ``sum_{i=s}^{e-1} b_i P^(i-s) = P^-s * (T_e - T_s)`` with
``T_k = sum_{i<k} b_i P^i``; P is odd so P^-1 exists modulo 2**64.  All arithmetic is uint64 with
wrap-around, which *is* the modulo.
"""
from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1

#: Odd multipliers (arbitrary 64-bit constants): byte polynomial, n-gram fold, second fingerprint lane.
P_BYTES = 0x9E3779B97F4A7C15
P_BYTES_2 = 0xC2B2AE3D27D4EB4F
K_TOKEN = 0x27D4EB2F165667C5

_F64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_F32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finalizer (a bijection that spreads every input bit), element-wise."""
    s, m1, m2 = _F64
    h = np.array(h, dtype=np.uint64, copy=True)
    tmp = np.empty_like(h)
    for m in (m1, m2):  # in place: no temporaries beyond one buffer
        np.right_shift(h, s, out=tmp)
        np.bitwise_xor(h, tmp, out=h)
        np.multiply(h, m, out=h)
    np.right_shift(h, s, out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    return h


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 32-bit finalizer; the same pre-mix datasketch's "affine32" scheme applies."""
    s1, m1, s2, m2 = _F32
    h = h ^ (h >> s1)
    h = h * m1
    h = h ^ (h >> s2)
    h = h * m2
    return h ^ (h >> s1)


def fmix64_int(h: int) -> int:
    """Pure-Python fmix64 (for the scalar reference hash functions)."""
    h &= MASK64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def poly_bytes_int(data: bytes, p: int = P_BYTES) -> int:
    """Pure-Python reference of the byte polynomial: sum(b_i * p**i) mod 2**64."""
    acc = 0
    power = 1
    for byte in data:
        acc = (acc + byte * power) & MASK64
        power = (power * p) & MASK64
    return acc


_POWER_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _power_table(base: int, n: int) -> np.ndarray:
    """base**i mod 2**64 for i < n: a 4096-entry cumprod, then block-wise outer products
    (a plain uint64 cumprod over millions of entries is ~10x slower)."""
    step = 4096
    small = np.full(step, base, dtype=np.uint64)
    small[0] = 1
    small = np.cumprod(small, dtype=np.uint64)
    n_blocks = -(-n // step)
    big = np.full(n_blocks, (int(small[-1]) * base) & MASK64, dtype=np.uint64)
    big[0] = 1
    big = np.cumprod(big, dtype=np.uint64)
    return (big[:, None] * small[None, :]).reshape(-1)[:n]


def _powers(p: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(p**i, p**-i) for i < n as uint64, cached and grown geometrically."""
    cached = _POWER_CACHE.get(p)
    if cached is None or len(cached[0]) < n:
        size = max(n, 2 * MAX_SLICE_BYTES + 1, 2 * (len(cached[0]) if cached else 0))
        cached = (_power_table(p, size), _power_table(pow(p, -1, 1 << 64), size))
        _POWER_CACHE[p] = cached
    return cached[0][:n], cached[1][:n]


#: Buffers are hashed in slices of at most this many bytes, so the cached power tables stay small.
MAX_SLICE_BYTES = 1 << 20


def range_poly(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, p: int = P_BYTES) -> np.ndarray:
    """``sum(buf[s:e][i] * p**i) mod 2**64`` for every [s, e) range, vectorized.

    `buf` is uint8; ranges may overlap or be empty (empty -> 0). Work is split into slices of
    about MAX_SLICE_BYTES so memory stays O(slice) whatever the buffer size; one range longer than
    a slice (a 10 MB token) gets a slice of its own.
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    out = np.zeros(len(starts), dtype=np.uint64)
    if len(starts) == 0:
        return out
    order = None
    if len(starts) > 1 and np.any(starts[1:] < starts[:-1]):
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
    res = np.zeros(len(starts), dtype=np.uint64)
    reach = np.maximum.accumulate(ends)  # furthest byte any range up to here needs
    i, n = 0, len(starts)
    while i < n:
        lo = int(starts[i])
        j = max(int(np.searchsorted(reach, lo + MAX_SLICE_BYTES, side="right")), i + 1)
        hi = int(reach[j - 1])
        seg = buf[lo:hi]
        fwd, bwd = _powers(p, len(seg) + 1)
        t = np.empty(len(seg) + 1, dtype=np.uint64)
        t[0] = 0
        np.multiply(seg, fwd[: len(seg)], out=t[1:])  # uint8 upcast on the fly
        np.cumsum(t[1:], out=t[1:])
        s = starts[i:j] - lo
        e = ends[i:j] - lo
        res[i:j] = (t[e] - t[s]) * bwd[s]
        i = j
    if order is not None:
        out[order] = res
    else:
        out = res
    return out


def bytes_of(arr) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 data buffer, int64 offsets[n+1]) of a pyarrow string/large_string array, zero-copy.

    Nulls must have been filled before (their bytes are treated as whatever the buffer holds,
    normally nothing).
    """
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_string(arr.type):
        off_type = np.int32
    elif pa.types.is_large_string(arr.type):
        off_type = np.int64
    else:
        raise TypeError(f"expected a string array, got {arr.type}")
    bufs = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(bufs[1], dtype=off_type, count=n + 1 + arr.offset)[arr.offset:].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return data, offsets


def text_fingerprints(texts) -> np.ndarray:
    """128-bit fingerprint of each whole string: [n, 2] uint64 (two independent polynomial lanes).

    Used as the exact-dedup key: at 128 bits a false collision among 10**10 rows has probability
    ~1e-18, and the value is stable across runs, so it can be saved in an index.
    """
    import pyarrow as pa

    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    data, off = bytes_of(texts)
    starts, ends = off[:-1], off[1:]
    lengths = (ends - starts).astype(np.uint64)
    a = fmix64(range_poly(data, starts, ends, P_BYTES) ^ lengths)
    b = fmix64(range_poly(data, starts, ends, P_BYTES_2) + lengths * np.uint64(K_TOKEN))
    return np.stack([a, b], axis=1)

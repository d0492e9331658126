"""Exact and MinHash near-duplicate removal.

Public, engine-independent building blocks (pure functions over Arrow/numpy batches):
  normalize_key.dedup_text   the text a dedup compares
  minhash.signatures         uint32 [n, num_perm] MinHash signatures (datasketch affine32-compatible)
  lsh.optimal_bands / lsh.band_hashes / lsh.bucket_edges
  clusters.connected_components / clusters.choose_keepers
and the hash functions to use our shingles with datasketch directly:

    from datasketch import MinHash
    from instructkit.ops.dedup import hash_function, shingles
    m = MinHash(num_perm=128, seed=1, scheme="affine32", hashfunc=hash_function)
    m.update_batch(shingles(text, ngram=5))   # m.hashvalues == signatures([text])[0]

Operators: `exact_dedup` (exact.py) and `minhash_dedup` (near_dedup.py), both barriers.
"""
from instructkit.ops.dedup.minhash import char_hash_function, hash_function, shingles, signatures

__all__ = ["char_hash_function", "hash_function", "shingles", "signatures"]

"""Dedup benchmark: MinHash signature throughput vs datasketch and rensa, full near-dedup on a
synthetic 1M-record set (wall time, peak RSS), and precision/recall on planted near-duplicates.

    python benchmarks/bench_dedup.py            # full: Alpaca 52k + synthetic 1M
    python benchmarks/bench_dedup.py --quick    # small sizes, a smoke run

Every heavy measurement runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.
Peers get their shingles precomputed (their shingling time is NOT counted); ours includes
normalization, tokenization and shingling. Per-core numbers use one thread everywhere.
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("INSTRUCTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


# ------------------------------------------------------------------ data
def alpaca_texts() -> list[str] | None:
    files = sorted(glob.glob(str(DATA / "alpaca" / "alpaca_en_original.part-*.jsonl.gz")))
    if not files:
        return None
    rows = []
    for p in files:
        with gzip.open(p, "rt") as f:
            rows += [json.loads(line) for line in f]
    return [r["instruction"] + "\n" + r["input"] + "\n" + r["output"] for r in rows]


def synthetic(n: int, dup_fraction: float = 0.1, seed: int = 0) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """n records of Zipf-distributed words (20-120 words, Alpaca-like length) in canonical schema.

    A `dup_fraction` of the records are planted near-duplicates: a copy of an earlier source record
    with 0-12 random word substitutions (true Jaccard spread over ~0.3-1.0).
    Returns (table, dup_rows, their source rows).
    """
    from instructkit.schema import record_schema

    rng = np.random.default_rng(seed)
    vocab_size = 30000
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    wlen = rng.integers(2, 10, vocab_size)
    woff = np.concatenate([[0], np.cumsum(wlen)]).astype(np.int32)
    wbytes = letters[rng.integers(0, 26, int(woff[-1]))]
    vocab = pa.StringArray.from_buffers(vocab_size, pa.py_buffer(woff), pa.py_buffer(wbytes.tobytes()))
    n_dup = int(n * dup_fraction)
    lengths = rng.integers(20, 121, n)
    dup_rows = np.sort(rng.choice(np.arange(n // 10, n), n_dup, replace=False))
    is_dup = np.zeros(n, bool)
    is_dup[dup_rows] = True
    # source of each dup: an earlier non-dup row
    src_pool = np.flatnonzero(~is_dup)
    for_each = np.searchsorted(src_pool, dup_rows) - 1
    src = src_pool[(rng.random(n_dup) * np.maximum(for_each, 1)).astype(np.int64)]
    lengths[dup_rows] = lengths[src]
    off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cdf = np.cumsum(1.0 / np.arange(1, vocab_size + 1))  # Zipf(1) like English: "the" ~ 9%
    words = np.searchsorted(cdf / cdf[-1], rng.random(int(off[-1])))
    # copy sources into dups, then substitute k random words
    from instructkit.ops.dedup.verify import _ragged_index

    dst_idx = _ragged_index(off[dup_rows], lengths[dup_rows])
    src_idx = _ragged_index(off[src], lengths[src])
    words[dst_idx] = words[src_idx]
    k = rng.integers(0, 13, n_dup)
    sub_doc = np.repeat(np.arange(n_dup), k)
    sub_pos = off[dup_rows][sub_doc] + (rng.random(len(sub_doc)) * lengths[dup_rows][sub_doc]).astype(np.int64)
    words[sub_pos] = rng.integers(0, vocab_size, len(sub_pos))
    del src_idx, dst_idx
    flat = vocab.take(pa.array(words))
    half = np.minimum(lengths // 4, 15)  # first words = the "user" turn, the rest = "assistant"
    user_lists = pa.ListArray.from_arrays(pa.array(np.stack([off[:-1], off[:-1] + half], 1).reshape(-1).astype(np.int32)), flat)
    user_text = pc.binary_join(user_lists.take(pa.array(np.arange(0, 2 * n, 2))), " ")
    asst_lists = pa.ListArray.from_arrays(pa.array(np.stack([off[:-1] + half, off[1:]], 1).reshape(-1).astype(np.int32)), flat)
    asst_text = pc.binary_join(asst_lists.take(pa.array(np.arange(0, 2 * n, 2))), " ")
    struct_u = pa.StructArray.from_arrays([pa.array(["user"] * n), user_text], names=["role", "content"])
    struct_a = pa.StructArray.from_arrays([pa.array(["assistant"] * n), asst_text], names=["role", "content"])
    inter = pa.concat_arrays([struct_u, struct_a]).take(pa.array(np.stack([np.arange(n), np.arange(n) + n], 1).reshape(-1)))
    messages = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), inter)
    ids = pc.binary_join_element_wise("syn", pc.cast(pa.array(np.arange(n)), pa.string()), "")
    table = pa.table({"id": ids, "messages": messages.cast(record_schema().field("messages").type),
                      "source": pa.array(["synthetic"] * n), "meta": pa.array(["{}"] * n)}, schema=record_schema())
    return table, dup_rows, src


# ------------------------------------------------------------------ measurements (run in subprocesses)
def peak_rss_mb() -> float:
    """This process's own peak RSS. VmHWM belongs to the process's address space, so unlike
    ru_maxrss (which Linux carries across fork+exec from the parent) it is the child's alone."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_signatures(texts_path: str, peers: bool, sample: int, rounds: int = 3) -> dict:
    """Docs/s of each method on the SAME `sample` docs, interleaved for `rounds` rounds; the best
    round of each method is kept, so a noisy shared machine hurts every method alike."""
    from instructkit.ops.dedup.minhash import shingles, signatures

    texts = pq.read_table(texts_path).column("text").combine_chunks()
    n = len(texts)
    res: dict = {"docs_total": n, "sample": sample, "rounds": rounds}
    signatures(texts.slice(0, 1000))  # warm caches (power tables)
    t = time.perf_counter()
    for lo in range(0, n, 8192):
        signatures(texts.slice(lo, 8192), num_perm=128, seed=1, ngram=5)
    res["instructkit_all_docs_per_s"] = n / (time.perf_counter() - t)
    sample_arr = texts.slice(0, sample)
    sample_texts = sample_arr.to_pylist()
    sh = [shingles(s, 5) for s in sample_texts]
    strs = [[x.decode() for x in s] for s in sh]
    import datasketch

    try:
        import rensa
    except ImportError:
        rensa = None

    def ours():
        for lo in range(0, sample, 8192):
            signatures(sample_arr.slice(lo, 8192), num_perm=128, seed=1, ngram=5)

    def ds_update_batch():
        for s in sh:
            m = datasketch.MinHash(num_perm=128, seed=1, scheme="affine32")
            m.update_batch(s)

    def ds_bulk():
        datasketch.MinHash.bulk(sh, num_perm=128, seed=1, scheme="affine32")

    def rensa_shingles():
        for s in strs:
            m = rensa.RMinHash(128, 1)
            m.update(s)
            m.digest()

    def rensa_words():
        for s in sample_texts:
            m = rensa.RMinHash(128, 1)
            m.update(s.split())
            m.digest()

    methods = {"instructkit": ours}
    if peers:
        methods.update({"datasketch_update_batch": ds_update_batch, "datasketch_bulk": ds_bulk})
        if rensa is not None:
            methods.update({"rensa_shingles": rensa_shingles, "rensa_words": rensa_words})
    best = {k: float("inf") for k in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    for name, sec in best.items():
        res[f"{name}_docs_per_s"] = sample / sec
    res["load_avg_1min"] = os.getloadavg()[0]
    return res


def measure_full(data_path: str, out_dir: str, threads: int, verify: str) -> dict:
    """fit + process of minhash_dedup over the Parquet file's batches, kept rows written to Parquet."""
    from instructkit.ops.dedup.near_dedup import MinHashDedup

    pf_path = data_path
    op = MinHashDedup(threads=threads, verify=verify)

    def batches():
        for rb in pq.ParquetFile(pf_path).iter_batches(batch_size=16384):
            yield pa.Table.from_batches([rb])

    t0 = time.perf_counter()
    op.setup()
    op.fit(batches)
    t_fit = time.perf_counter() - t0
    writer = None
    kept = dropped = 0
    keepers = []
    for b in batches():
        d = op.process(b)
        mask = d.keep_mask()
        out = d.table.filter(pa.array(mask))
        kept += out.num_rows
        dropped += int((~mask).sum())
        keepers.append(np.asarray(d.table.column("dup_cluster").to_numpy()))
        if writer is None:
            writer = pq.ParquetWriter(os.path.join(out_dir, "kept.parquet"), out.schema)
        writer.write_table(out)
    writer.close()
    total = time.perf_counter() - t0
    clusters = np.concatenate(keepers)
    np.save(os.path.join(out_dir, "clusters.npy"), clusters)
    return {"rows": kept + dropped, "kept": kept, "dropped": dropped, "fit_s": t_fit, "total_s": total,
            "peak_rss_mb": peak_rss_mb(), "stats": op.stats, "threads": threads,
            "bands": op.bands, "rows_per_band": op.rows}


def measure_datasketch_lsh(texts_path: str, limit: int) -> dict:
    """datasketch MinHash (bulk) + MinHashLSH insert/query on the same texts (peer pipeline)."""
    import datasketch

    from instructkit.ops.dedup.minhash import shingles

    texts = pq.read_table(texts_path).column("text").to_pylist()[:limit]
    t = time.perf_counter()
    sh = [shingles(s, 5) for s in texts]
    mhs = datasketch.MinHash.bulk(sh, num_perm=128, seed=1, scheme="affine32")
    lsh = datasketch.MinHashLSH(threshold=0.8, num_perm=128)
    dups = 0
    for i, m in enumerate(mhs):
        if lsh.query(m):
            dups += 1
        else:
            lsh.insert(i, m)
    return {"docs": len(texts), "seconds": time.perf_counter() - t, "dropped": dups, "peak_rss_mb": peak_rss_mb()}


def _child(kind: str, args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ quality
def quality(table: pa.Table, dup_rows: np.ndarray, src: np.ndarray, clusters: np.ndarray, threshold: float) -> dict:
    """Precision/recall of the dedup decisions against the planted pairs (true Jaccard computed
    exactly from the 64-bit shingle sets, not from MinHash)."""
    from instructkit.ops.dedup.minhash import shingle_hashes
    from instructkit.ops.dedup.normalize_key import dedup_text
    from instructkit.ops.dedup.verify import exact_jaccard, unique_sets

    n = table.num_rows
    rows = np.unique(np.concatenate([dup_rows, src]))
    sub = table.take(pa.array(rows))
    h, off = shingle_hashes(dedup_text(sub.column("messages"), "user_assistant", lowercase=False,
                                       collapse_whitespace=False), 5, bits=64)
    vals, voff = unique_sets(h, off)
    a = np.searchsorted(rows, dup_rows)
    b = np.searchsorted(rows, src)
    j = exact_jaccard(vals, voff, a, b)
    same = clusters[dup_rows] == clusters[src]
    hi = j >= threshold + 0.05
    # every row merged into another row's cluster is a "positive"; planted pairs are the only
    # intended duplicates, so a merged row that is neither a planted dup nor a source is a false positive
    members = np.bincount(clusters, minlength=n)[clusters] > 1
    planted = np.zeros(n, bool)
    planted[dup_rows] = True
    planted[src] = True
    merged_pairs = same
    tp_pairs = int((merged_pairs & (j >= threshold - 0.05)).sum())
    return {
        "planted_pairs": int(len(dup_rows)),
        "pairs_true_j_ge_t+0.05": int(hi.sum()),
        "recall_at_t+0.05": float(same[hi].mean()) if hi.any() else float("nan"),
        "recall_all_j_ge_t": float(same[j >= threshold].mean()) if (j >= threshold).any() else float("nan"),
        "recall_j_in_[t+0.05,t+0.1)": float(same[hi & (j < threshold + 0.1)].mean()) if (hi & (j < threshold + 0.1)).any() else float("nan"),
        "merged_planted_pairs": int(merged_pairs.sum()),
        "precision_pairs_j_ge_t-0.05": tp_pairs / max(int(merged_pairs.sum()), 1),
        "precision_pairs_j_ge_t": float((j[merged_pairs] >= threshold).mean()) if merged_pairs.any() else float("nan"),
        "unplanted_rows_merged": int((members & ~planted).sum()),
        "jaccard_hist": np.histogram(j, bins=[0, .5, .7, .8, .85, .9, 1.01])[0].tolist(),
    }


# ------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs="+")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-peer-lsh", action="store_true", help="skip the slow datasketch MinHashLSH run")
    args, _ = ap.parse_known_args()
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "sig":
            print(json.dumps(measure_signatures(rest[0], rest[1] == "1", int(rest[2]))))
        elif kind == "full":
            print(json.dumps(measure_full(rest[0], rest[1], int(rest[2]), rest[3])))
        elif kind == "dslsh":
            print(json.dumps(measure_datasketch_lsh(rest[0], int(rest[1]))))
        return 0

    n_syn = args.rows or (100_000 if args.quick else 1_000_000)
    sample = 2000 if args.quick else 5000
    tmp = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    print(f"# bench_dedup  cpu={os.cpu_count()}  synthetic rows={n_syn}  tmp={tmp}")
    from instructkit.ops.dedup.normalize_key import dedup_text

    # 1) signatures/s on Alpaca (real text) vs peers, single thread
    al = alpaca_texts()
    if al is None:
        print(f"(Alpaca not found under {DATA}: skipping the real-text part)")
    else:
        pq.write_table(pa.table({"text": pa.array(al, pa.large_string())}), tmp / "alpaca.parquet")
        r = _child("sig", [str(tmp / "alpaca.parquet"), "1", str(sample)])
        ours = r["instructkit_docs_per_s"]
        print(f"\n## signatures, Alpaca (same {r['sample']} docs for every method, best of {r['rounds']} interleaved "
              f"rounds), num_perm=128, 5-gram words, 1 thread, load avg {r['load_avg_1min']:.1f}")
        print(f"instructkit signatures(): {ours:,.0f} docs/s (includes normalize+tokenize+shingle); all "
              f"{r['docs_total']} docs: {r['instructkit_all_docs_per_s']:,.0f} docs/s")
        for k in ("datasketch_update_batch_docs_per_s", "datasketch_bulk_docs_per_s", "rensa_shingles_docs_per_s",
                  "rensa_words_docs_per_s"):
            if k in r:
                print(f"{k:40s} {r[k]:>12,.0f} docs/s   instructkit/peer = {ours / r[k]:.2f}x")
        print(json.dumps(r))
        al_table = _alpaca_table(al)
        pq.write_table(al_table, tmp / "alpaca_rows.parquet")
        f = _child("full", [str(tmp / "alpaca_rows.parquet"), str(tmp), str(args.threads), "none"])
        print(f"instructkit minhash_dedup on Alpaca ({args.threads} threads, verify none): {f['total_s']:.1f}s, dropped "
              f"{f['dropped']}, peak RSS {f['peak_rss_mb']:.0f} MB")
        if not args.skip_peer_lsh:
            d = _child("dslsh", [str(tmp / "alpaca.parquet"), str(len(al))])
            print(f"datasketch MinHash.bulk + MinHashLSH on Alpaca (1 thread): {d['seconds']:.1f}s, dropped "
                  f"{d['dropped']}, peak RSS {d['peak_rss_mb']:.0f} MB   datasketch/instructkit time = "
                  f"{d['seconds'] / f['total_s']:.1f}x")

    # 2) synthetic: full near-dedup wall time + RSS, and quality
    t = time.perf_counter()
    table, dup_rows, src = synthetic(n_syn)
    pq.write_table(table, tmp / "syn.parquet", row_group_size=65536)
    print(f"\n## synthetic {n_syn:,} rows ({len(dup_rows):,} planted near-dups), generated in {time.perf_counter() - t:.1f}s")
    texts = dedup_text(table.column("messages"), "user_assistant", lowercase=False, collapse_whitespace=False)
    pq.write_table(pa.table({"text": texts}), tmp / "syn_text.parquet")
    r = _child("sig", [str(tmp / "syn_text.parquet"), "1", str(sample)])
    ours = r["instructkit_docs_per_s"]
    print(f"signatures (1 thread, same {r['sample']} docs, best of {r['rounds']}): instructkit {ours:,.0f} docs/s; "
          f"all {r['docs_total']:,} docs {r['instructkit_all_docs_per_s']:,.0f} docs/s; load avg {r['load_avg_1min']:.1f}")
    for k in ("datasketch_update_batch_docs_per_s", "datasketch_bulk_docs_per_s", "rensa_shingles_docs_per_s",
              "rensa_words_docs_per_s"):
        if k in r:
            print(f"  vs {k:40s} {r[k]:>10,.0f} docs/s  ratio {ours / r[k]:.2f}x")
    for verify in ("none", "exact"):
        f = _child("full", [str(tmp / "syn.parquet"), str(tmp), str(args.threads), verify])
        print(f"full minhash_dedup verify={verify} ({args.threads} threads; read parquet -> signatures -> LSH -> "
              f"clusters -> write kept parquet): {f['total_s']:.1f}s (fit {f['fit_s']:.1f}s), peak RSS "
              f"{f['peak_rss_mb']:.0f} MB, dropped {f['dropped']:,}  [target <= 60 s, <= 4096 MB]")
        print("  stats:", json.dumps(f["stats"]))
        clusters = np.load(tmp / "clusters.npy")
        q = quality(table, dup_rows, src, clusters, 0.8)
        print("  quality:", json.dumps(q))
    print(f"\n(temporary files in {tmp}; delete when done)")
    return 0


def _alpaca_table(texts: list[str]) -> pa.Table:
    from instructkit.schema import record_schema

    n = len(texts)
    msgs = [[{"role": "user", "content": t.split("\n", 1)[0]}, {"role": "assistant", "content": t.split("\n", 1)[1]}]
            for t in texts]
    return pa.Table.from_pylist([{"id": f"alpaca{i}", "messages": m, "source": "alpaca", "meta": "{}"}
                                 for i, m in enumerate(msgs)], schema=record_schema())


if __name__ == "__main__":
    sys.exit(main())

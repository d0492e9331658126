"""Ray engine vs local engine on the dedup pipeline, same data, same machine, one run.

    python benchmarks/bench_ray.py             # 100k and 1M records
    python benchmarks/bench_ray.py --quick     # 20k records (smoke run)
    python benchmarks/bench_ray.py --sizes 100000 300000

Synthetic conversations with planted exact duplicates (25%), near duplicates (one word changed,
25%) and unique rows; pipeline: normalize -> drop_empty_turns -> exact_dedup -> minhash_dedup ->
length_filter. For each size it runs the local engine (`--local-workers`, default 1) and the Ray engine (a local Ray cluster
with 2 CPUs), checks that both kept the same rows, and prints wall time, peak RSS per process
(driver; each Ray worker; Ray's own daemons), the Ray/local time ratio and the bytes shuffled by
the two dedup barriers (measured: the Arrow size of the datasets that go through groupby).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("INSTRUCTKIT_QUIET", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

from instructkit import Pipeline  # noqa: E402
from instructkit.engine.local import InMemoryInput  # noqa: E402
from instructkit.schema import record_schema  # noqa: E402

STEPS = ["normalize", "drop_empty_turns", "exact_dedup", {"minhash_dedup": {"threshold": 0.8}},
         {"length_filter": {"min_assistant_chars": 5}}]
SHARDS = 8  # inputs: one Ray read task each, like 8 files


def synthetic(n: int, seed: int = 0) -> pa.Table:
    """n conversations: ~25% exact copies, ~25% one-word edits of an earlier row, the rest unique."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(5000)])
    n_base = max(1, n // 2)
    lens = rng.integers(30, 80, n_base)
    words = vocab[rng.integers(0, len(vocab), int(lens.sum()))]
    cuts = np.cumsum(lens)[:-1]
    base = [" ".join(w) for w in np.split(words, cuts)]
    answers = [f"Answer number {i % 997} with a few words of text." for i in range(n_base)]
    kind = rng.random(n)
    src = rng.integers(0, n_base, n)
    pyr = random.Random(seed)
    users, assts = [], []
    for i in range(n):
        if i < n_base and kind[i] >= 0.5:
            j = i
        else:
            j = int(src[i])
        u = base[j]
        if kind[i] < 0.25:  # near duplicate: change one word
            ws = u.split()
            ws[pyr.randrange(len(ws))] = "edited"
            u = " ".join(ws)
        users.append(u)
        assts.append(answers[j])
    msgs = pa.array([[{"role": "user", "content": u}, {"role": "assistant", "content": a}]
                     for u, a in zip(users, assts)], record_schema().field("messages").type)
    ids = pa.array([f"syn{i:08d}" for i in range(n)], pa.string())
    return pa.table({"id": ids, "messages": msgs, "source": pa.array(["synthetic"] * n, pa.string()),
                     "meta": pa.array(["{}"] * n, pa.string())}, schema=record_schema())


class PeakRSS:
    """Samples the RSS of the driver and of every Ray process (workers, raylet, GCS, ...) until stopped."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        mine = {c.pid for c in psutil.Process(me).children(recursive=True)}
        for p in psutil.process_iter(["pid", "name", "cmdline", "memory_info"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                name = p.info["name"] or ""
                if p.info["pid"] == me:
                    kind = "driver"
                elif name.startswith("ray::") or "default_worker.py" in cmd:
                    kind = "ray worker"
                elif any(k in cmd for k in ("raylet", "gcs_server", "ray/_private", "dashboard", "log_monitor")):
                    kind = "ray daemon"
                elif p.info["pid"] in mine:
                    kind = "local worker"  # the local engine's process pool
                else:
                    continue
                rss = p.info["memory_info"].rss
                old = self.peak.get(p.info["pid"], (kind, 0))[1]
                self.peak[p.info["pid"]] = (kind, max(old, rss))
            except (psutil.NoSuchProcess, psutil.AccessDenied, TypeError):
                continue

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        mb = 1 / 2**20
        by = {"driver": [], "ray worker": [], "ray daemon": [], "local worker": []}
        for kind, rss in self.peak.values():
            by[kind].append(rss * mb)
        return {"driver_mb": round(max(by["driver"], default=0)),
                "worker_max_mb": round(max(by["ray worker"], default=0)),
                "workers_sum_mb": round(sum(by["ray worker"])), "workers": len(by["ray worker"]),
                "daemons_sum_mb": round(sum(by["ray daemon"])),
                "local_workers_max_mb": round(max(by["local worker"], default=0))}


def inputs_for(table: pa.Table) -> list[InMemoryInput]:
    step = -(-table.num_rows // SHARDS)
    return [InMemoryInput(table.slice(i * step, step), name=f"shard{i}") for i in range(SHARDS)
            if table.slice(i * step, step).num_rows]


def run_local(table: pa.Table, out: Path, workers: int) -> dict:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        res = Pipeline(STEPS, batch_size=8192, workers=workers).run(inputs_for(table), out_dir=out, progress=False)
        wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 2), "mem": mem.summary(), "kept": res.read().column("id"),
            "counts": res.manifest["counts"]}


def run_ray(table: pa.Table, out: Path) -> dict:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        res = Pipeline(STEPS, batch_size=8192).run(inputs_for(table), out_dir=out, engine="ray", progress=False)
        wall = time.perf_counter() - t0
    barriers = res.manifest["engine"]["barriers"]
    return {"wall_s": round(wall, 2), "mem": mem.summary(), "kept": res.read().column("id"),
            "counts": res.manifest["counts"], "barriers": barriers,
            "shuffle_bytes": sum(int(b.get("shuffle_bytes", 0)) for b in barriers.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k records only")
    ap.add_argument("--sizes", type=int, nargs="*", help="record counts (default 100000 1000000)")
    ap.add_argument("--object-store-mb", type=int, default=3000)
    ap.add_argument("--local-workers", type=int, default=1,
                    help="process pool of the local engine (1 = in-process; the dedup barriers dominate anyway)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    sizes = [20_000] if args.quick else (args.sizes or [100_000, 1_000_000])

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=args.object_store_mb * 2**20,
             log_to_driver=False, configure_logging=False)
    print(f"ray.init (2 CPUs): {time.perf_counter() - t0:.1f}s (not counted below)")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        for n in sizes:
            t0 = time.perf_counter()
            table = synthetic(n)
            print(f"\n== {n:,} records (generated in {time.perf_counter() - t0:.1f}s, "
                  f"{table.nbytes / 2**20:.0f} MB in Arrow)")
            loc = run_local(table, Path(tmp) / f"local{n}", args.local_workers)
            ry = run_ray(table, Path(tmp) / f"ray{n}")
            same = loc["kept"].equals(ry["kept"]) and loc["counts"] == ry["counts"]
            row = {"records": n, "arrow_mb": round(table.nbytes / 2**20), "identical": same,
                   "kept": loc["counts"]["written"], "rejected": loc["counts"]["rejected"],
                   "local_s": loc["wall_s"], "ray_s": ry["wall_s"], "ray_over_local": round(ry["wall_s"] / loc["wall_s"], 2),
                   "local_mem": loc["mem"], "ray_mem": ry["mem"], "shuffle_mb": round(ry["shuffle_bytes"] / 2**20, 1),
                   "barriers": ry["barriers"]}
            results.append(row)
            print(f"identical output: {same}   kept {row['kept']:,}  rejected {row['rejected']:,}")
            print(f"local engine ({args.local_workers} worker(s)): {loc['wall_s']:8.1f}s   driver peak RSS {loc['mem']['driver_mb']} MB, "
                  f"pool workers max {loc['mem']['local_workers_max_mb']} MB")
            print(f"ray engine   : {ry['wall_s']:8.1f}s   driver {ry['mem']['driver_mb']} MB, "
                  f"{ry['mem']['workers']} workers max {ry['mem']['worker_max_mb']} MB "
                  f"(sum {ry['mem']['workers_sum_mb']} MB), Ray daemons {ry['mem']['daemons_sum_mb']} MB")
            print(f"ray / local  : {row['ray_over_local']:.2f}x   shuffled {row['shuffle_mb']} MB "
                  f"(exact {ry['barriers'].get('03_exact_dedup', {}).get('shuffle_bytes', 0) / 2**20:.1f} MB, "
                  f"minhash {ry['barriers'].get('04_minhash_dedup', {}).get('shuffle_bytes', 0) / 2**20:.1f} MB)")
            for label, b in ry["barriers"].items():
                secs = {k: v for k, v in b.items() if k.startswith("seconds")}
                print(f"   {label}: {secs}")
    ray.shutdown()
    if len(results) >= 2:
        a, b = results[0], results[-1]
        f = b["records"] / a["records"]
        print(f"\nscaling {a['records']:,} -> {b['records']:,} records ({f:.0f}x):")
        for eng, key in (("local", "local_s"), ("ray", "ray_s")):
            print(f"  {eng:5s}: time x{b[key] / a[key]:.1f}")
        print(f"  ray driver RSS x{b['ray_mem']['driver_mb'] / max(a['ray_mem']['driver_mb'], 1):.1f}, "
              f"shuffle x{b['shuffle_mb'] / max(a['shuffle_mb'], 1e-9):.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

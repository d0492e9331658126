"""Ingest benchmark: instructkit read + normalize vs `datasets.load_dataset("json")` + `.map`.

    python benchmarks/bench_ingest.py            # Alpaca 52k + synthetic 100k and 1M JSONL
    python benchmarks/bench_ingest.py --quick    # Alpaca part 0 + synthetic 20k / 100k
    python benchmarks/bench_ingest.py --repeat 3 # 3 interleaved rounds per input, median reported

Each measurement runs in a fresh subprocess so that peak RSS (ru_maxrss) belongs to that
method alone. Both wall time and CPU time (user+sys, all threads) are reported: on a shared,
oversubscribed machine wall time mostly measures the neighbours, CPU time measures the work. The baseline builds the same `messages` column with a batched `.map` (the fast
way to use `datasets`), timed twice: with a fresh cache (a user's first run: parse, write the
Arrow cache, map, write the map cache) and with a warm cache (a user's second run over the same
files: both steps are served from the cache). instructkit keeps no cache and does the whole work
every time, plus the `normalize` operator.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ALPACA = str(REPO.parent / "shared" / "data" / "alpaca" / "alpaca_en_original.part-*.jsonl.gz")


# ------------------------------------------------------------------------- workers (subprocess)
# Imports and a tiny warm-up run happen before the clock starts for every method: we time the
# work, not Python startup.
def prepare_instructkit(normalize: bool):
    sys.path.insert(0, str(REPO))
    from instructkit.io import InputSpec, read_input

    op = None
    if normalize:
        try:
            from instructkit.ops import build

            op, _ = build({"normalize": {}})
            op.setup()
        except Exception as exc:  # noqa: BLE001 - the benchmark still measures reading
            print(f"(normalize unavailable: {exc}; measuring reading only)", file=sys.stderr)

    def run(paths: list[str]) -> int:
        n = 0
        for p in paths:
            for batch in read_input(InputSpec(p, format="alpaca"), batch_size=8192):
                if op is not None:
                    batch = op.process(batch)
                n += batch.num_rows
        return n

    return run


def prepare_datasets():
    import datasets

    datasets.disable_progress_bars()

    def to_messages(b):
        msgs = []
        for ins, inp, out in zip(b["instruction"], b["input"], b["output"]):
            user = f"{ins}\n\n{inp}" if inp and inp.strip() else ins
            msgs.append([{"role": "user", "content": user}, {"role": "assistant", "content": out}])
        return {"messages": msgs}

    def load(paths: list[str], cache: str) -> int:
        ds = datasets.load_dataset("json", data_files=paths, split="train", cache_dir=cache)
        ds = ds.map(to_messages, batched=True, batch_size=1000, remove_columns=ds.column_names)
        return len(ds)

    def run(paths: list[str]) -> int:
        warm = os.environ.get("IK_BENCH_HF_CACHE")
        if warm:  # a user's second run: the Arrow cache and the .map result are reused
            return load(paths, warm)
        with tempfile.TemporaryDirectory() as cache:  # a user's first run: nothing cached yet
            return load(paths, cache)

    return run


METHODS = {
    "instructkit": lambda: prepare_instructkit(normalize=True),
    "instructkit_read": lambda: prepare_instructkit(normalize=False),
    "datasets": prepare_datasets,
    "datasets_cached": prepare_datasets,
}


def warm_up(run) -> None:
    """One tiny input through the method before the clock: first-use costs (lazy imports such as
    pyarrow pulling in pandas on its first `pa.array(ndarray)`, kernel registries, regex
    compilation) are paid once per process by either tool and are not throughput."""
    saved = os.environ.pop("IK_BENCH_HF_CACHE", None)  # never put the tiny file in the warm cache
    with tempfile.TemporaryDirectory() as d:
        tiny = Path(d) / "tiny.jsonl"
        tiny.write_text("".join(json.dumps({"instruction": f"say {i}  ", "input": "x" if i % 2 else "",
                                            "output": f"ok {i}"}) + "\n" for i in range(3)))
        run([str(tiny)])
    if saved is not None:
        os.environ["IK_BENCH_HF_CACHE"] = saved


def worker(method: str, paths: list[str]) -> None:
    run = METHODS[method]()
    warm_up(run)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    n = run(paths)
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"rows": n, "seconds": secs, "cpu_seconds": cpu, "peak_rss_mb": r1.ru_maxrss / 1024}))


# ------------------------------------------------------------------------- driver
def measure(method: str, paths: list[str], hf_cache: str | None = None) -> dict:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    if hf_cache:
        env["IK_BENCH_HF_CACHE"] = hf_cache
    out = subprocess.run([sys.executable, __file__, "--worker", method, *paths], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{out.stderr[-2000:]}")
    if out.stderr.strip():
        print(out.stderr.strip().splitlines()[-1], file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(results: list[dict]) -> dict:
    """The round with the median CPU time (wall and RSS of that same round, not mixed)."""
    return sorted(results, key=lambda r: r["cpu_seconds"])[len(results) // 2]


def synthetic(path: Path, n: int, seed: int = 0) -> None:
    """Alpaca-shaped records (no id, so instructkit also computes content-hash ids)."""
    rng = random.Random(seed)
    words = ("data model train answer question list explain write short story code python table value "
             "result number simple give three reasons why how what the a of to in and").split()
    with open(path, "w") as fh:
        for i in range(n):
            ins = " ".join(rng.choice(words) for _ in range(rng.randint(5, 25))) + f" #{i}"
            inp = "" if rng.random() < 0.6 else " ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
            out = " ".join(rng.choice(words) for _ in range(rng.randint(20, 120)))
            fh.write(json.dumps({"instruction": ins, "input": inp, "output": out}) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds per input, methods interleaved each round; the median round is reported")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.worker:
        worker(args.worker[0], args.worker[1:] + rest)
        return 0

    cases: list[tuple[str, list[str]]] = []
    alpaca = sorted(glob.glob(ALPACA))
    if alpaca:
        cases.append(("alpaca 52k (3 x .jsonl.gz)" if not args.quick else "alpaca part 0 (.jsonl.gz)",
                      alpaca[:1] if args.quick else alpaca))
    else:
        print(f"skipping Alpaca: {ALPACA} not found")
    tmp = Path(tempfile.mkdtemp(prefix="ik-bench-"))
    sizes = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
    for n in sizes:
        p = tmp / f"synthetic_{n}.jsonl"
        synthetic(p, n)
        cases.append((f"synthetic {n:,} JSONL ({p.stat().st_size / 1e6:.0f} MB)", [str(p)]))

    names = (("instructkit", "instructkit read+normalize"), ("instructkit_read", "instructkit read only"),
             ("datasets", "datasets json + map (fresh cache)"),
             ("datasets_cached", "datasets json + map (warm cache, 2nd run)"))
    rows = []
    for label, paths in cases:
        with tempfile.TemporaryDirectory(prefix="ik-hf-") as hf_cache:
            measure("datasets_cached", paths, hf_cache)  # fill the cache, not timed
            rounds: dict[str, list[dict]] = {m: [] for m, _ in names}
            for k in range(args.repeat):
                order = [m for m, _ in names]
                order = order[k % len(order):] + order[:k % len(order)]  # rotate who goes first
                for m in order:
                    rounds[m].append(measure(m, paths, hf_cache if m == "datasets_cached" else None))
        res = {m: _median(rs) for m, rs in rounds.items()}
        assert len({r["rows"] for r in res.values()}) == 1, (label, {m: r["rows"] for m, r in res.items()})
        rows.append((label, res))
        print(f"{label}: " + ", ".join(f"{title} {r['rows'] / r['seconds']:,.0f} rows/s wall, "
                                        f"{r['rows'] / r['cpu_seconds']:,.0f} rows/s CPU, {r['peak_rss_mb']:.0f} MB"
                                        for (m, title), r in zip(names, res.values())), flush=True)

    print()
    print("| input | rows | method | rows/s (wall) | rows/s (CPU) | peak RSS | speed-up vs datasets fresh (wall) "
          "| (CPU) | vs datasets warm (wall) | (CPU) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, res in rows:
        hf, hw = res["datasets"], res["datasets_cached"]
        for m, title in names:
            r = res[m]
            print(f"| {label} | {r['rows']:,} | {title} | {r['rows'] / r['seconds']:,.0f} | "
                  f"{r['rows'] / r['cpu_seconds']:,.0f} | {r['peak_rss_mb']:.0f} MB | "
                  f"{hf['seconds'] / r['seconds']:.1f}x | {hf['cpu_seconds'] / r['cpu_seconds']:.1f}x | "
                  f"{hw['seconds'] / r['seconds']:.1f}x | {hw['cpu_seconds'] / r['cpu_seconds']:.1f}x |")
    syn = [r[1]["instructkit"] for r in rows if r[0].startswith("synthetic")]
    if len(syn) == 2:
        small, big = syn
        print(f"\nPeak RSS, streaming read+normalize: {small['peak_rss_mb']:.0f} MB -> {big['peak_rss_mb']:.0f} MB "
              f"({big['peak_rss_mb'] / small['peak_rss_mb']:.2f}x) for {big['rows'] / small['rows']:.0f}x "
              f"the rows")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())

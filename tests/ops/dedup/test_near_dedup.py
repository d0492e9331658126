"""minhash_dedup through the engine: planted duplicates, verification, incremental index, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from instructkit import Pipeline
from instructkit.ops.dedup.minhash import shingles
from tests.conftest import make_table


def _doc(rng, vocab, n):
    return " ".join(vocab[rng.integers(0, len(vocab), n)])


def _planted(n_base=600, n_dup=300, seed=0):
    """Random documents plus near-copies with 0-4 substituted words (a spread of true Jaccard)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(5000)])
    base = [_doc(rng, vocab, int(rng.integers(60, 150))) for _ in range(n_base)]
    docs, src = list(base), []
    for _ in range(n_dup):
        s = int(rng.integers(0, n_base))
        words = base[s].split()
        for _k in range(int(rng.integers(0, 5))):
            words[int(rng.integers(0, len(words)))] = str(rng.choice(vocab))
        docs.append(" ".join(words))
        src.append(s)
    return docs, np.array(src)


def _jaccard(a, b):
    sa, sb = set(shingles(a, 5)), set(shingles(b, 5))
    return len(sa & sb) / len(sa | sb)


def _run(tmp_path, docs, name="out", batch_size=128, **opts):
    t = make_table([[("user", "Summarize."), ("assistant", d)] for d in docs], ids=[f"d{i:05d}" for i in range(len(docs))])
    key = opts.pop("key", "last_assistant")
    return Pipeline([{"minhash_dedup": {"key": key, **opts}}], batch_size=batch_size).run([t], out_dir=tmp_path / name)


def test_planted_duplicates_precision_and_recall(tmp_path):
    docs, src = _planted()
    res = _run(tmp_path, docs, verify="exact")
    kept = set(res.read().column("id").to_pylist())
    rej = res.rejects()
    n_base = len(docs) - len(src)
    truth = np.array([_jaccard(docs[n_base + i], docs[s]) for i, s in enumerate(src)])
    dup_dropped = np.array([f"d{n_base + i:05d}" not in kept for i in range(len(src))])
    strong = truth >= 0.85
    assert strong.sum() >= 100
    assert dup_dropped[strong].mean() >= 0.95  # recall on pairs with Jaccard >= threshold + 0.05
    # precision: every dropped row's true Jaccard with the row kept in its place is >= threshold
    ids = {f"d{i:05d}": d for i, d in enumerate(docs)}
    details = [json.loads(d) for d in rej.column("detail").to_pylist()]
    good = [_jaccard(ids[i], ids[d["kept_id"]]) >= 0.8 for i, d in zip(rej.column("id").to_pylist(), details)]
    assert len(good) > 0 and np.mean(good) >= 0.99
    for d in details:
        assert set(d) == {"cluster", "cluster_size", "kept_id", "similarity", "kept_from_index"}
        assert d["cluster_size"] >= 2 and 0.0 <= d["similarity"] <= 1.0


def test_exact_verification_removes_constructed_false_positive(tmp_path):
    words = [f"t{i}" for i in range(60)]
    a = " ".join(words)
    b = " ".join(words[:30] + [f"u{i}" for i in range(30)])  # Jaccard ~ 0.3
    assert _jaccard(a, b) < 0.5
    # 32 bands of 1 row: any single equal slot is a candidate, so this pair surely collides
    loose = _run(tmp_path, [a, b], "none", bands=32, rows=1, verify="none")
    assert loose.read().num_rows == 1
    checked = _run(tmp_path, [a, b], "exact", bands=32, rows=1, verify="exact")
    assert checked.read().num_rows == 2
    sig = _run(tmp_path, [a, b], "sig", bands=32, rows=1, verify="signature")
    assert sig.read().num_rows == 2


def test_ten_thousand_identical_rows_one_cluster(tmp_path):
    docs = ["the very same answer, repeated for every single row of this dataset"] * 10_000 + ["something else entirely"]
    res = _run(tmp_path, docs, batch_size=4096)
    kept = res.read()
    assert kept.column("id").to_pylist() == ["d00000", "d10000"]
    assert kept.column("dup_cluster_size").to_pylist() == [10_000, 1]
    assert res.manifest["counts"]["read"] == 10_001
    d = json.loads(res.rejects().column("detail")[0].as_py())
    assert d["kept_id"] == "d00000" and d["similarity"] == 1.0 and d["cluster"] == 0


def test_incremental_dedup_against_saved_index(tmp_path):
    docs, src = _planted(n_base=100, n_dup=0)
    idx = tmp_path / "index"
    first = _run(tmp_path, docs[:60], "one", index_out=str(idx))
    assert first.read().num_rows == 60 and (idx / "signatures.npy").exists()
    words = docs[5].split()
    words[3] = "changed"
    near_old = " ".join(words)
    second_docs = [near_old] + docs[60:100] + [docs[60]]
    t_ids = [f"n{i}" for i in range(len(second_docs))]
    from tests.conftest import make_table as mk

    t = mk([[("user", "Summarize."), ("assistant", d)] for d in second_docs], ids=t_ids)
    res = Pipeline([{"minhash_dedup": {"key": "last_assistant", "index_in": str(idx)}}]).run([t], out_dir=tmp_path / "two")
    rej = {i: json.loads(d) for i, d in zip(res.rejects().column("id").to_pylist(), res.rejects().column("detail").to_pylist())}
    assert set(rej) == {"n0", f"n{len(second_docs) - 1}"}  # near-copy of an old row + an in-batch exact copy
    assert rej["n0"]["kept_id"] == "d00005" and rej["n0"]["kept_from_index"] is True
    assert rej[f"n{len(second_docs) - 1}"]["kept_id"] == "n1"


def test_bad_input_empty_short_non_latin_and_huge(tmp_path):
    big = ("lorem ipsum dolor sit amet consectetur " * 30000)[:1_000_000]
    docs = ["", "", "   ", "ok", "ok", "short text", "东京塔是日本东京的一座电波塔，高三百三十三米。", "东京塔是日本东京的一座电波塔，高三百三十三米！",
            big, big + " tail"]
    res = _run(tmp_path, docs, batch_size=3)
    kept = res.read().column("id").to_pylist()
    # empty texts are never near-duplicates; identical short texts are
    assert {"d00000", "d00001", "d00002"} <= set(kept)
    assert "d00003" in kept and "d00004" not in kept
    assert "d00008" in kept and "d00009" not in kept
    # CJK without spaces is one "word" per sentence; char n-grams see the near-duplicate
    cjk = _run(tmp_path, docs[6:8], "cjk", char_ngrams=True, ngram=3)
    assert cjk.read().num_rows == 1


def test_options_are_validated(tmp_path):
    from instructkit.errors import ConfigError

    for bad in ({"threshold": 1.5}, {"bands": 4}, {"bands": 20, "rows": 20}, {"verify": "maybe"}, {"keep": "x"}):
        with pytest.raises(ConfigError):
            Pipeline([{"minhash_dedup": bad}]).run([make_table([[("user", "a"), ("assistant", "b")]])],
                                                  out_dir=tmp_path)


def test_exact_near_and_decontam_in_one_pipeline(tmp_path):
    """The quickstart shape: every dropped row is accounted for, with a cluster or benchmark detail."""
    from importlib import resources

    gsm = json.loads((resources.files("instructkit.ops.decontam") / "samples" / "gsm8k_sample.jsonl")
                     .read_text(encoding="utf-8").splitlines()[0])
    docs, _ = _planted(n_base=50, n_dup=0)
    near = docs[1].split()
    near[10] = "different"
    convs = [[("user", "Summarize."), ("assistant", d)] for d in docs]
    convs += [convs[0], [("user", "Summarize."), ("assistant", " ".join(near))], [("user", gsm["question"]), ("assistant", "ok")]]
    steps = ["exact_dedup", {"minhash_dedup": {"key": "last_assistant"}}, "decontaminate"]
    res = Pipeline(steps, batch_size=16).run([make_table(convs)], out_dir=tmp_path)
    by_stage = res.manifest["rejects_by_stage"]
    assert by_stage == {"01_exact_dedup": {"exact_duplicate": 1}, "02_minhash_dedup": {"near_duplicate": 1},
                        "03_decontaminate": {"benchmark_contamination": 1}}
    rej = res.rejects()
    details = {s: json.loads(d) for s, d in zip(rej.column("stage").to_pylist(), rej.column("detail").to_pylist())}
    assert details["01_exact_dedup"]["kept_id"] == "row0"
    assert details["02_minhash_dedup"]["kept_id"] == "row1" and details["02_minhash_dedup"]["similarity"] > 0.7
    assert details["03_decontaminate"]["benchmark"] == "gsm8k_sample"
    kept = res.read()
    assert {"exact_dup_cluster", "dup_cluster", "dup_cluster_size", "dup_similarity", "contam_ngrams"} <= set(kept.column_names)

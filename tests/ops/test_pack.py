"""Packing: a valid best-fit-decreasing assignment, lossless layout, and the same loss as unpacked."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instructkit.errors import ConfigError
from instructkit.ops.base import OutputContext, build
from instructkit.ops.pack import IGNORE_INDEX, best_fit_decreasing, pack_table

REPO = Path(__file__).resolve().parents[2]
STORIES = REPO / "examples" / "models" / "stories260K"


def _reference_bfd(lengths, capacity):
    """Textbook best-fit decreasing, written plainly (O(n * bins)) as an independent reference."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # sorted() is stable
    free, out = [], [None] * len(lengths)
    for i in order:
        best = None
        for b, rem in enumerate(free):
            if rem >= lengths[i] and (best is None or rem < free[best]):
                best = b
        if best is None:
            free.append(capacity)
            best = len(free) - 1
        free[best] -= lengths[i]
        out[i] = best
    return out


def test_best_fit_decreasing_matches_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        lengths = rng.integers(1, 64, size=int(rng.integers(1, 200)))
        got = best_fit_decreasing(lengths, 64)
        assert got.tolist() == _reference_bfd(lengths.tolist(), 64)
        assert np.bincount(got, weights=lengths).max() <= 64
    with pytest.raises(ValueError):
        best_fit_decreasing(np.array([65]), 64)


def _tokenized(lengths, seed=0):
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for n in lengths:
        x = rng.integers(3, 500, size=n).tolist()
        cut = n // 2
        ids.append(x)
        labels.append([IGNORE_INDEX] * cut + x[cut:])
    return pa.table({"id": [f"r{i}" for i in range(len(lengths))],
                     "input_ids": pa.array(ids, pa.list_(pa.int32())),
                     "labels": pa.array(labels, pa.list_(pa.int32()))})


def test_pack_table_layout_is_lossless():
    lengths = [50, 10, 30, 60, 5, 44, 20, 64, 1, 33]
    table = _tokenized(lengths)
    packed, stats = pack_table(table, 64)
    assert stats["sequences"] == len(lengths) and stats["tokens"] == sum(lengths)
    assert stats["rows"] == packed.num_rows < len(lengths)
    by_id = {r["id"]: r for r in table.to_pylist()}
    seen = []
    for row in packed.to_pylist():
        assert len(row["input_ids"]) == len(row["labels"]) == len(row["position_ids"]) == sum(row["seq_lengths"]) <= 64
        start = 0
        for rid, n in zip(row["ids"], row["seq_lengths"]):
            src = by_id[rid]
            assert row["input_ids"][start:start + n] == src["input_ids"]
            assert row["position_ids"][start:start + n] == list(range(n))
            assert row["labels"][start] == IGNORE_INDEX
            assert row["labels"][start + 1:start + n] == src["labels"][1:]
            start += n
            seen.append(rid)
    assert sorted(seen) == sorted(by_id)
    with pytest.raises(ConfigError, match="pack.max_length"):
        pack_table(table, 32)


def test_pack_operator_writes_splits_and_efficiency(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(_tokenized([40, 30, 20, 10, 60, 4], seed=1), data / "train-00000.parquet")
    pq.write_table(_tokenized([12, 50], seed=2), data / "train-00001.parquet")
    pq.write_table(_tokenized([7, 9], seed=3), data / "eval-00000.parquet")
    op, _ = build({"pack": {"max_length": 64, "rows_per_file": 2}})
    files = sorted(data.glob("*.parquet"))
    result = op.finalize(OutputContext(out_dir=tmp_path, data_files=files, manifest={}))
    json.dumps(result)  # goes into manifest.json
    train = result["splits"]["train"]
    assert train["sequences"] == 8 and train["tokens"] == sum([40, 30, 20, 10, 60, 4, 12, 50])
    assert train["efficiency"] == round(train["tokens"] / (train["rows"] * 64), 4)
    assert train["efficiency"] > train["padded_efficiency"]
    assert result["splits"]["eval"]["rows"] == 1
    written = sorted(p.name for p in (tmp_path / "packed").glob("*.parquet"))
    assert written == sorted(train["files"] + result["splits"]["eval"]["files"])
    assert sum(pq.read_metadata(tmp_path / "packed" / f).num_rows for f in train["files"]) == train["rows"]
    with pytest.raises(ConfigError, match="max_length"):
        build({"pack": {"max_length": 1}})


def test_packed_loss_equals_unpacked_losses_on_stories260k():
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from instructkit.ops.tokenize import tokenize_batch
    from instructkit.schema import record_schema
    from instructkit.templates import load_template, load_tokenizer

    tok = load_tokenizer(STORIES)
    tpl = load_template("alpaca", tokenizer=tok)  # plain-text markers: every id is in the 512 vocab
    convs = [
        [("user", "Tell me a story about a cat."), ("assistant", "Once upon a time there was a cat named Tom.")],
        [("user", "Who is Lily?"), ("assistant", "Lily is a little girl."), ("user", "Does she play?"),
         ("assistant", "Yes, she likes to play in the park with her dog.")],
        [("user", "Say hi."), ("assistant", "Hi!")],
        [("user", "What did the bird do?"), ("assistant", "The bird flew up to the tree and sang a happy song.")],
        [("user", "Name a color."), ("assistant", "Red.")],
    ]
    rows = [{"id": f"r{i}", "messages": [{"role": r, "content": c} for r, c in conv], "source": "t", "meta": "{}"}
            for i, conv in enumerate(convs)]
    res = tokenize_batch(pa.Table.from_pylist(rows, schema=record_schema()), tpl, tok)
    assert res.reason.null_count == len(convs)
    table = res.table
    longest = max(table["n_tokens"].to_pylist())
    packed, stats = pack_table(table.select(["id", "input_ids", "labels"]), 2 * longest)
    assert stats["rows"] < len(convs)

    model = AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32).eval()

    def token_losses(ids, labels, **kw):
        logits = model(input_ids=torch.tensor([ids]), use_cache=False, **kw).logits[0, :-1]
        target = torch.tensor(labels[1:])
        return torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none"), target

    with torch.no_grad():
        unpacked = {}
        for rid, ids, labels in zip(table["id"].to_pylist(), table["input_ids"].to_pylist(), table["labels"].to_pylist()):
            loss, target = token_losses(ids, labels)
            mask = target != IGNORE_INDEX
            unpacked[rid] = (loss[mask].sum().item(), int(mask.sum()))
        packed_sum, packed_n, per_seq = 0.0, 0, {}
        naive_sum = 0.0
        for row in packed.to_pylist():
            ids, labels = row["input_ids"], row["labels"]
            loss, target = token_losses(ids, labels, position_ids=torch.tensor([row["position_ids"]]))
            mask = target != IGNORE_INDEX
            packed_sum += loss[mask].sum().item()
            packed_n += int(mask.sum())
            # cross-check: an explicit block-diagonal causal mask gives the same losses
            n = len(ids)
            seg = np.repeat(np.arange(len(row["seq_lengths"])), row["seq_lengths"])
            allowed = torch.tensor((seg[:, None] == seg[None, :]) & np.tril(np.ones((n, n), bool)))
            mask4d = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[None, None]
            loss4d, _ = token_losses(ids, labels, attention_mask=mask4d,
                                     position_ids=torch.tensor([row["position_ids"]]))
            assert torch.allclose(loss4d[mask], loss[mask], atol=1e-4)
            # negative control: without position_ids the sequences see each other
            naive, _ = token_losses(ids, labels)
            naive_sum += naive[mask].sum().item()
            start = 0
            for rid, length in zip(row["ids"], row["seq_lengths"]):
                sl = slice(start, start + length - 1)  # predictions made inside this sequence
                m = mask[sl]
                per_seq[rid] = (loss[sl][m].sum().item(), int(m.sum()))
                start += length
    # token-weighted: packed batch loss == loss over all unpacked label tokens
    total_sum = sum(s for s, _ in unpacked.values())
    total_n = sum(n for _, n in unpacked.values())
    assert packed_n == total_n
    assert packed_sum / packed_n == pytest.approx(total_sum / total_n, rel=1e-5)
    # per sequence: the mean of unpacked per-sequence losses == the same from the packed pass
    mean_unpacked = np.mean([s / n for s, n in unpacked.values()])
    mean_packed = np.mean([per_seq[r][0] / per_seq[r][1] for r in unpacked])
    assert mean_packed == pytest.approx(mean_unpacked, rel=1e-5)
    assert abs(naive_sum - total_sum) / total_sum > 1e-3

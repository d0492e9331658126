"""Reading pipeline output: gate check, packed/ vs data/, packing, and no cross-talk in a packed row."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from instructkit.errors import DataError, GateFailed
from instructkit.train.data import IGNORE, collate, load_dataset_dir, pack_first_fit_decreasing
from instructkit.train.loop import loss_full_logits, loss_label_positions_only

from .conftest import STORIES, write_pipeline_dir


@pytest.mark.parametrize("gate,msg", [(None, "no 'gate' entry"), (False, "gate.passed = False")])
def test_refuses_without_passed_gate_unless_forced(tmp_path, pairs, gate, msg):
    root = write_pipeline_dir(tmp_path / "ds", pairs, gate=gate)
    with pytest.raises(GateFailed, match=msg + ".*--force"):
        load_dataset_dir(root, max_length=128)
    assert len(load_dataset_dir(root, max_length=128, force=True).train) > 0


def test_missing_manifest_and_bad_dirs(tmp_path, pairs):
    root = write_pipeline_dir(tmp_path / "ds", pairs)
    (root / "manifest.json").unlink()
    with pytest.raises(GateFailed, match="manifest.json: not found"):
        load_dataset_dir(root, max_length=128)
    with pytest.raises(DataError, match="dataset directory not found"):
        load_dataset_dir(tmp_path / "nope", max_length=128)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.json").write_text(json.dumps({"gate": {"passed": True}}))
    with pytest.raises(DataError, match="no Parquet files"):
        load_dataset_dir(empty, max_length=128)


def test_unpacked_rows_are_packed_without_losing_tokens(dataset_dir, pairs):
    ds = load_dataset_dir(dataset_dir, max_length=256)
    assert ds.source == "data" and ds.eval is not None and len(ds.eval) <= 6
    train_pairs = pairs[6:]
    assert ds.train.n_tokens == sum(len(p[0]) for p in train_pairs)
    assert len(ds.train) < len(train_pairs)  # 256-token rows hold two ~120-token sequences
    assert all(len(x) <= 256 for x in ds.train.input_ids)
    # every packed row splits back into original sequences (positions restart at 0)
    originals = sorted(tuple(p[0]) for p in train_pairs)
    found = []
    for ids, pos in zip(ds.train.input_ids, ds.train.position_ids):
        starts = list(np.flatnonzero(pos == 0)) + [len(ids)]
        found += [tuple(ids[a:b].tolist()) for a, b in zip(starts, starts[1:])]
    assert sorted(found) == originals


def test_truncation_is_counted_not_silent(tmp_path, pairs):
    root = write_pipeline_dir(tmp_path / "ds", pairs)
    ds = load_dataset_dir(root, max_length=100, pack=False)
    too_long = sum(len(p[0]) > 100 for p in pairs)
    assert too_long > 0 and ds.train.stats["truncated"] == too_long
    assert max(len(x) for x in ds.train.input_ids) == 100


def test_packed_dir_is_preferred_and_seq_lengths_give_positions(tmp_path, pairs):
    a, b = pairs[0], pairs[1]
    packed = [{"input_ids": a[0] + b[0], "labels": a[1] + b[1], "seq_lengths": [len(a[0]), len(b[0])]}]
    root = write_pipeline_dir(tmp_path / "ds", pairs, packed_rows=packed, n_eval=3)
    ds = load_dataset_dir(root, max_length=512)
    assert ds.source == "packed" and len(ds.train) == 1
    assert ds.eval is not None and ds.eval.stats["rows_read"] == 3  # eval from data/ when packed/ has none
    pos = ds.train.position_ids[0]
    assert pos.tolist() == list(range(len(a[0]))) + list(range(len(b[0])))
    with pytest.raises(DataError, match="raise train.max_length"):
        load_dataset_dir(root, max_length=64)


def test_first_fit_decreasing():
    bins = pack_first_fit_decreasing([5, 3, 7, 2, 2, 1], capacity=8)
    assert sorted(i for b in bins for i in b) == list(range(6))
    assert all(sum([5, 3, 7, 2, 2, 1][i] for i in b) <= 8 for b in bins)
    assert len(bins) == 3  # 20 tokens need at least 3 bins of 8


def test_collate_shifts_targets_within_each_sequence(pairs):
    from instructkit.train.data import Rows

    a, b = pairs[2], pairs[3]
    rows = Rows([np.array(a[0] + b[0]), np.array(a[0])], [np.array(a[1] + b[1]), np.array(a[1])],
                [np.r_[np.arange(len(a[0])), np.arange(len(b[0]))], np.arange(len(a[0]))])
    batch = collate(rows, [0, 1], pad_id=0)
    t = batch["targets"]
    n = len(a[0])
    assert t[0, n - 1] == IGNORE  # last token of seq a does not predict seq b's first token
    assert t[0, : n - 1].tolist() == a[1][1:]
    assert t[1, n:].eq(IGNORE).all()  # padding carries no loss
    assert int(batch["n_tokens"]) == 2 * n + len(b[0])


def test_packed_sequences_do_not_attend_to_each_other(pairs):
    """Loss and logits of a packed row equal those of its sequences run one by one."""
    from instructkit.train.data import Rows

    model = AutoModelForCausalLM.from_pretrained(STORIES, dtype=torch.float32).eval()
    seqs = pairs[:3]
    packed = Rows([np.concatenate([s[0] for s in seqs])], [np.concatenate([s[1] for s in seqs])],
                  [np.concatenate([np.arange(len(s[0])) for s in seqs])])
    single = Rows([np.array(s[0]) for s in seqs], [np.array(s[1]) for s in seqs],
                  [np.arange(len(s[0])) for s in seqs])
    with torch.no_grad():
        pb = collate(packed, [0])
        logits = model(input_ids=pb["input_ids"], position_ids=pb["position_ids"], use_cache=False).logits[0]
        packed_loss = loss_full_logits(model, pb)
        fast_loss = loss_label_positions_only(model, pb)
        one_by_one = 0.0
        offset = 0
        for i, s in enumerate(seqs):
            sb = collate(single, [i])
            own = model(input_ids=sb["input_ids"], use_cache=False).logits[0]
            torch.testing.assert_close(logits[offset: offset + len(s[0])], own, rtol=1e-4, atol=1e-4)
            one_by_one += float(loss_full_logits(model, sb))
            offset += len(s[0])
    assert packed_loss.item() == pytest.approx(one_by_one, rel=1e-5)
    assert fast_loss.item() == pytest.approx(one_by_one, rel=1e-5)

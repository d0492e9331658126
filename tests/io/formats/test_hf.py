"""HF datasets: a save_to_disk directory (Dataset and DatasetDict), and a clear offline error."""
from __future__ import annotations

import pytest

from instructkit.errors import DataError
from tests.io.conftest import FIXTURES, good, jsonl, read_all


@pytest.fixture
def saved(tmp_path):
    import datasets

    recs = jsonl(FIXTURES / "sharegpt_oasst.jsonl")
    ds = datasets.Dataset.from_list(recs[:3])
    d1 = tmp_path / "ds"
    ds.save_to_disk(str(d1))
    d2 = tmp_path / "dd"
    datasets.DatasetDict({"train": ds, "test": datasets.Dataset.from_list(recs[3:])}).save_to_disk(str(d2))
    return recs, d1, d2


def test_save_to_disk_dir_is_detected_and_read(saved):
    recs, d1, d2 = saved
    rows = good(read_all(d1))
    assert [r["id"] for r in rows] == [r["id"] for r in recs[:3]]
    assert rows[0]["messages"][0] == {"role": "user", "content": recs[0]["conversations"][0]["value"]}
    test_rows = good(read_all(d2, format="hf", options={"split": "test"}))
    assert [r["id"] for r in test_rows] == [r["id"] for r in recs[3:]]
    assert len(good(read_all(d2))) == 3  # default split: train


def test_unknown_split_lists_the_splits(saved):
    _, _, d2 = saved
    with pytest.raises(DataError, match="split 'validation' not found; options.split is one of: train, test"):
        read_all(d2, format="hf", options={"split": "validation"})


def test_hub_name_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as ei:
        read_all("someone/some-dataset", format="hf")
    assert "Hugging Face Hub is offline" in str(ei.value) and "\n" not in str(ei.value)

"""Output Parquet must load in the tools people use next: HF datasets and Polars."""
from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from instructkit import Pipeline
from instructkit.errors import InvariantError
from instructkit.io.writers import RejectWriter, ShardedParquetWriter, count_parquet_rows
from tests.conftest import make_table


def test_output_loads_with_datasets_and_polars(tmp_path):
    convs = [[("system", "Be brief."), ("user", f"q{i}"), ("assistant", f"a{i}")] for i in range(50)]
    res = Pipeline(["normalize"], split={"eval_ratio": 0.2}).run([make_table(convs)], out_dir=tmp_path)
    import datasets

    files = {"train": str(tmp_path / "data" / "train-*.parquet"), "eval": str(tmp_path / "data" / "eval-*.parquet")}
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows + ds["eval"].num_rows == 50
    assert ds["train"][0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "_file" not in ds["train"].column_names  # provenance stays internal
    df = pl.read_parquet(tmp_path / "data" / "*.parquet")
    assert df.height == 50 and df.schema["messages"] == pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    assert res.manifest["counts"]["written"] == 50


def test_jsonl_on_request(tmp_path):


    table = make_table([[("user", "q"), ("assistant", "a")]])
    p = Pipeline([])
    cfg = p.config([table], tmp_path)
    cfg.output.jsonl = True
    from instructkit.engine.local import run

    run(cfg, show_progress=False)
    lines = (tmp_path / "data" / "train-00000.jsonl").read_text().splitlines()
    assert len(lines) == 1 and '"content":"a"' in lines[0]


def test_shards_rotate_and_counts_come_from_footers(tmp_path):
    w = ShardedParquetWriter(tmp_path, "train", shard_rows=40)
    t = make_table([[("user", f"q{i}"), ("assistant", "a")] for i in range(100)])
    w.write(t.slice(0, 70))
    w.write(t.slice(70))
    w.close()
    assert [f.name for f in w.files] == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    assert count_parquet_rows(w.files) == 100 == w.rows


def test_inconsistent_column_types_are_a_clear_error(tmp_path):
    w = ShardedParquetWriter(tmp_path, "train")
    w.write(pa.table({"id": ["a"], "score": [1.5]}))
    with pytest.raises(InvariantError, match="inconsistent column types"):
        w.write(pa.table({"id": ["b"], "score": ["high"]}))


def test_reject_writer_counts_by_stage_and_reason(tmp_path):
    r = RejectWriter(tmp_path)
    t = make_table([[("user", "q"), ("assistant", "")]] * 3)
    r.add(t, "02_x", pa.array(["empty", "empty", "short"]))
    r.close()
    assert r.by_stage == {"02_x": {"empty": 2, "short": 1}}
    assert count_parquet_rows(r.files) == 3

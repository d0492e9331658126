"""The dataset card: Hub front matter parses and `datasets.load_dataset` on the push dry-run
folder reads every split with the configs the card declares."""
from __future__ import annotations

import json

from instructkit.ops.base import OutputContext, build
from instructkit.quality import card
from instructkit.quality.push import push
from tests.quality.builders import data_files, rows, write_output


def gated_output(tmp_path, n=90):
    out = write_output(tmp_path / "out", rows(n))
    manifest = json.loads((out / "manifest.json").read_text())
    ctx = OutputContext(out_dir=out, data_files=data_files(out), manifest=manifest)
    manifest["gate"] = build({"quality_gate": {}})[0].finalize(ctx)["gate"]
    build({"report": {"license": "cc-by-4.0"}})[0].finalize(ctx)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_front_matter_parses_with_hub_fields(tmp_path):
    out = gated_output(tmp_path)
    text = (out / "README.md").read_text()
    fm = card.parse_front_matter(text)
    assert fm["license"] == "cc-by-4.0" and fm["language"] == ["en"]
    assert fm["task_categories"] == ["text-generation"] and fm["size_categories"] == ["n<1K"]
    assert fm["configs"][0]["data_files"] == [{"split": "train", "path": "data/train-*.parquet"},
                                              {"split": "eval", "path": "data/eval-*.parquet"}]
    body = text.split("---\n", 2)[2]
    assert "| max_reject_share | pass |" in body and "exact_duplicate" in body and "`01_filter`" in body


def test_load_dataset_reads_the_dry_run_folder(tmp_path):
    import datasets

    data = rows(90)
    out = gated_output(tmp_path, n=90)
    res = push(out, "someone/demo", dry_run=True)
    folder = out / "hub_upload"
    assert res["folder"] == str(folder)
    listed = (out / "hub_upload.txt").read_text().split()
    on_disk = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert listed == on_disk == res["files"]
    assert {"README.md", "report.html", "report.json", "manifest.json"} <= set(listed)
    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf_cache"))
    assert set(ds) == {"train", "eval"}
    assert ds["train"].num_rows + ds["eval"].num_rows == len(data)
    assert sorted(list(ds["train"]["id"]) + list(ds["eval"]["id"])) == sorted(r["id"] for r in data)
    first = ds["train"][0]
    original = next(r for r in data if r["id"] == first["id"])
    assert first["messages"] == original["messages"] and first["n_label_tokens"] == original["n_label_tokens"]


def test_size_categories_boundaries():
    assert card.size_category(999) == "n<1K" and card.size_category(1000) == "1K<n<10K"
    assert card.size_category(2_500_000) == "1M<n<10M"

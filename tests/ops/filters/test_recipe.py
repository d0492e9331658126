"""The clean_alpaca recipe end to end on a small in-memory Alpaca-shaped table."""
from __future__ import annotations

import csv
from collections import Counter

import yaml

from instructkit.ops import build
from instructkit.ops.filters.defects import DEFECTS
from instructkit.pipeline import Pipeline
from tests.conftest import REPO, make_table

ROWS = [
    ("Give three tips for staying healthy.", "Eat vegetables, sleep eight hours and walk every day."),
    ("Design a logo for a bakery.", "<nooutput>"),
    ("Summarize the article.\n\nhttps://news.example.org/2020/story", "The article is about rain."),
    ("What is the capital of France?", ""),
    ("Write a short email to a colleague.", "Hi Sam, please call me at (415) 555-0132 or write to sam@example.com."),
    ("Explain what a noun is in a couple of sentences, with two or three simple examples for children.",
     "Un nom est un mot qui désigne une personne, un animal, une chose ou une idée, comme chat, maison ou liberté."),
]


def recipe_steps():
    raw = yaml.safe_load((REPO / "pipelines" / "clean_alpaca.yaml").read_text())
    assert raw["inputs"][0]["format"] == "alpaca"
    return raw["steps"]


def test_every_recipe_step_builds():
    for i, spec in enumerate(recipe_steps()):
        build(spec, where=f"clean_alpaca.steps[{i}]")


def test_clean_alpaca_runs_and_accounts_for_every_row(tmp_path):
    table = make_table([[("user", u), ("assistant", a)] for u, a in ROWS])
    res = Pipeline(recipe_steps(), inputs=[table], output=tmp_path / "out").run(progress=False)
    rej = res.rejects()
    reasons = Counter(rej.column("reason").to_pylist())
    assert dict(reasons) == {"placeholder_output": 1, "media_reference": 1, "empty_output": 1, "lang_mismatch": 1}
    kept = res.read("train")
    assert kept.num_rows + rej.num_rows == len(ROWS)
    email = [m for m in kept.column("messages").to_pylist() if "colleague" in m[0]["content"]][0]
    assert email[1]["content"] == "Hi Sam, please call me at <PHONE> or write to <EMAIL>."
    for col in ("defect_flags", "lang_user", "lang_assistant_prob", "rep_dup_ngram_frac", "pii_count"):
        assert col in kept.column_names


def test_annotate_only_keeps_rows_but_writes_columns(tmp_path):
    steps = [{"instruction_defects": {"annotate_only": True}}]
    table = make_table([[("user", u), ("assistant", a)] for u, a in ROWS])
    res = Pipeline(steps, inputs=[table], output=tmp_path / "out").run(progress=False)
    kept = res.read("train")
    assert kept.num_rows == len(ROWS)
    flags = kept.column("defect_flags").to_pylist()
    assert flags == [[], ["placeholder_output", "image_generation"], ["media_reference"], ["empty_output"], [], []]


def test_labelled_fixture_is_ids_and_labels_only():
    path = REPO / "tests" / "fixtures" / "filters" / "alpaca_defect_labels.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"id", "defect", "label"}  # no CC BY-NC text stored
    assert {r["defect"] for r in rows} <= set(DEFECTS)
    assert {r["label"] for r in rows} <= {"0", "1"}
    assert len({(r["id"], r["defect"]) for r in rows}) == len(rows)

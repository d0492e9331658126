"""The gate with real great-expectations: a clean dataset passes and publishes; each kind of
broken dataset fails naming exactly the expectation it breaks, in full and statistics mode, and
its data ends in quarantine/."""
from __future__ import annotations

import json

import pytest

from instructkit.errors import ConfigError, GateFailed
from instructkit.ops.base import OutputContext, build
from instructkit.quality import gate as gate_mod
from tests.quality.builders import data_files, rows, write_output

N = 60


def run_gate_op(out, **options):
    op, _ = build({"quality_gate": options})
    manifest = json.loads((out / "manifest.json").read_text())
    return op.finalize(OutputContext(out_dir=out, data_files=data_files(out), manifest=manifest))


def _empty_answers(r):
    for x in r[10:13]:
        x["messages"][-1]["content"] = "   "
    return {}, {}


def _no_assistant(r):
    r[7]["messages"] = [m for m in r[7]["messages"] if m["role"] != "assistant"]
    return {}, {}


def _duplicate_ids(r):
    r[20]["id"] = r[21]["id"] = r[22]["id"]
    return {}, {}


def _zero_label_tokens(r):
    r[5]["n_label_tokens"] = 0
    return {}, {}


def _contaminated(r):
    r[33]["contam_benchmark"] = "gsm8k"
    return {}, {}


def _pii(r):
    r[40]["messages"][-1]["content"] += " Write to jane.doe@example.org for details."
    return {}, {}


def _too_many_rejects(r):
    return {"rejects": {"near_duplicate": 3 * N, "empty_output": 1}}, {}


def _other_language(r):
    for x in r[: N // 2]:
        x["lang_assistant"] = "de"
    return {}, {"expect": {"main_language_share": {"min": 0.9, "language": "en"}}}


def _too_few_rows(r):
    return {}, {"expect": {"min_rows": N + 1}}


def _long_tokens(r):
    for x in r:
        x["n_tokens"] = 5000
    return {}, {"expect": {"token_percentiles": {"p50": [8, 4096], "p99": [16, 8192]}}}


BROKEN = {
    "empty_answers": (_empty_answers, "no_empty_assistant"),
    "no_assistant_turn": (_no_assistant, "no_empty_assistant"),
    "duplicate_ids": (_duplicate_ids, "unique_ids"),
    "zero_label_tokens": (_zero_label_tokens, "label_tokens_positive"),
    "contaminated": (_contaminated, "no_contamination"),
    "pii_left": (_pii, "no_pii"),
    "too_many_rejects": (_too_many_rejects, "max_reject_share"),
    "other_language": (_other_language, "main_language_share"),
    "too_few_rows": (_too_few_rows, "min_rows"),
    "long_token_p50": (_long_tokens, "token_percentiles"),
}


@pytest.mark.parametrize("mode", ["full", "statistics"])
def test_clean_dataset_passes_and_stays_published(tmp_path, mode):
    out = write_output(tmp_path / "out", rows(N))
    result = run_gate_op(out, mode=mode)["gate"]
    assert result["passed"], result
    assert result["mode"] == mode
    ran = {r["expectation"] for r in result["results"] if r.get("status") != "skipped"}
    assert {"min_rows", "unique_ids", "no_empty_assistant", "label_tokens_positive", "no_contamination",
            "main_language_share", "max_reject_share", "no_pii"} <= ran
    assert all(r["gx_type"].startswith("expect_") for r in result["results"])
    assert gate_mod.publish_or_quarantine(out, result["passed"]) == []
    assert len(data_files(out)) == 3 and not (out / "quarantine").exists()


@pytest.mark.parametrize("mode", ["full", "statistics"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_dataset_fails_naming_the_expectation(tmp_path, case, mode):
    breaker, expected = BROKEN[case]
    data = rows(N)
    write_kw, gate_kw = breaker(data)
    out = write_output(tmp_path / "out", data, **write_kw)
    with pytest.raises(GateFailed) as info:
        run_gate_op(out, mode=mode, **gate_kw)
    exc = info.value
    failed = {r["expectation"] for r in exc.result["gate"]["results"] if not r["success"]}
    assert failed == {expected}
    msg = str(exc)
    assert "\n" not in msg and f"{expected}: observed" in msg and "expected" in msg
    moved = gate_mod.publish_or_quarantine(out, exc.result["gate"]["passed"])
    assert moved == ["quarantine/data"]
    assert not (out / "data").exists() and len(list((out / "quarantine" / "data").glob("*.parquet"))) == 3


def test_observed_values_are_the_real_counts(tmp_path):
    data = rows(N)
    _empty_answers(data)
    _duplicate_ids(data)
    out = write_output(tmp_path / "out", data, rejects={"near_duplicate": 100})
    for mode in ("full", "statistics"):
        with pytest.raises(GateFailed) as info:
            run_gate_op(out, mode=mode)
        res = {r["expectation"]: r for r in info.value.result["gate"]["results"]}
        assert res["no_empty_assistant"]["observed"].startswith("3 rows")
        assert res["unique_ids"]["observed"].startswith("3 " if mode == "full" else "2 ")  # 3 rows share; 2 extra ids
        assert res["max_reject_share"]["observed"] == f"near_duplicate = {100 / (N + 100):.2%}"


def test_auto_mode_switches_to_statistics_above_the_row_limit(tmp_path):
    out = write_output(tmp_path / "out", rows(N))
    assert run_gate_op(out, full_scan_max_rows=N)["gate"]["mode"] == "full"
    assert run_gate_op(out, full_scan_max_rows=N - 1)["gate"]["mode"] == "statistics"
    pii = [r for r in run_gate_op(out, sample_rows=10)["gate"]["results"] if r["expectation"] == "no_pii"][0]
    assert pii["mode"] == "sample" and "10 sampled rows" in pii["expected"]


def test_strict_preset_fails_when_a_check_cannot_run(tmp_path):
    import pyarrow.parquet as pq

    out = write_output(tmp_path / "out", rows(120))
    for f in data_files(out):  # drop the token columns: strict must not silently skip
        t = pq.read_table(f)
        pq.write_table(t.drop_columns(["n_tokens", "n_label_tokens"]), f)
    with pytest.raises(GateFailed) as info:
        run_gate_op(out, preset="strict")
    failed = {r["expectation"] for r in info.value.result["gate"]["results"] if not r["success"]}
    assert failed == {"label_tokens_positive", "token_percentiles"}
    result = run_gate_op(out, preset="sft_default")["gate"]
    assert result["passed"]
    assert {r["expectation"] for r in result["results"] if r.get("status") == "skipped"} == {"label_tokens_positive"}


def test_suite_file_and_config_errors_are_one_line(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: mine\nexpect:\n  min_rows: 5\n  unique_ids: true\n")
    s = gate_mod.load_suite(None, suite)
    assert s.name == "mine" and s.expect == {"min_rows": 5, "unique_ids": True}
    for opts, text in [({"preset": "nope"}, "unknown preset 'nope'"),
                       ({"expect": {"min_row": 3}}, "unknown expectation 'min_row'"),
                       ({"expect": {"min_rows": "3"}}, "expected a number"),
                       ({"mode": "fast"}, "quality_gate.mode"),
                       ({"expect": {"no_pii": {"patterns": ["ssn"]}}}, "unknown pattern 'ssn'")]:
        with pytest.raises(ConfigError) as info:
            build({"quality_gate": opts})
        assert text in str(info.value) and "\n" not in str(info.value)


def test_gate_passed_reads_the_manifest():
    assert gate_mod.gate_passed({"gate": {"passed": True}})
    assert not gate_mod.gate_passed({"gate": {"passed": False}}) and not gate_mod.gate_passed({})


def test_everything_rejected_fails_min_rows_and_still_reports(tmp_path):
    out = write_output(tmp_path / "out", [], rejects={"empty_output": 10})
    assert data_files(out) == []
    with pytest.raises(GateFailed) as info:
        run_gate_op(out)
    res = info.value.result["gate"]["results"]
    assert {r["expectation"] for r in res if not r["success"]} == {"min_rows", "max_reject_share"}
    from instructkit.quality import report, stats

    html = report.render(stats.compute(out), {"gate": info.value.result["gate"]})
    assert "FAILED" in html and "min_rows" in html

"""Same items, same prompts, same model: our multiple-choice accuracy equals lm-evaluation-harness's.

lm_eval is a benchmark-only dependency; the test is skipped where it is not installed.
"""
from __future__ import annotations

import os

import pytest

from instructkit.eval.multiple_choice import evaluate_items
from instructkit.eval.runner import mc_items
from instructkit.eval.tasks import load_task


@pytest.mark.slow
def test_accuracy_equals_lm_eval(tiny_lm, eval_data_dir, tmp_path):
    pytest.importorskip("lm_eval")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    data = eval_data_dir / "mc_eval" / "openbook_qa.jsonl"
    (tmp_path / "ik_obqa.yaml").write_text(
        f"task: ik_obqa\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: query\ndoc_to_choice: choices\ndoc_to_target: gold\n"
        "target_delimiter: \" \"\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n")
    hflm = HFLM(pretrained=tiny_lm.model, tokenizer=tiny_lm.tokenizer, batch_size=8, add_bos_token=True)
    theirs = simple_evaluate(model=hflm, tasks=["ik_obqa"], task_manager=TaskManager(include_path=str(tmp_path)),
                             bootstrap_iters=0, verbosity="ERROR", log_samples=True)
    ours = evaluate_items(tiny_lm.model, tiny_lm.tokenizer, mc_items(load_task("openbook_qa"), eval_data_dir, None),
                          log_samples=True)
    assert ours["metrics"]["acc"] == pytest.approx(theirs["results"]["ik_obqa"]["acc,none"])
    assert ours["metrics"]["acc_norm"] == pytest.approx(theirs["results"]["ik_obqa"]["acc_norm,none"])
    # per choice, the log-likelihoods themselves agree
    their_samples = sorted(theirs["samples"]["ik_obqa"], key=lambda s: s["doc_id"])
    for mine, their in zip(ours["samples"], their_samples):
        their_lls = [float(r[0][0]) if isinstance(r[0], (list, tuple)) else float(r[0]) for r in their["filtered_resps"]]
        assert mine["loglikelihoods"] == pytest.approx(their_lls, rel=1e-5, abs=1e-5)

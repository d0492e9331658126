"""`instructkit push` through the real CLI: dry-run staging, refusal without a passed gate, and
one-line errors when the Hub cannot be reached or no token exists (no network needed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO
from tests.quality.test_card import gated_output
from tests.quality.builders import rows, write_output


def cli(*args, env_extra=None, cwd=None):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(cwd), "HF_HOME": str(cwd / "hf"),
           "GX_ANALYTICS_ENABLED": "false", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "instructkit", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def one_line_error(r, text):
    assert r.returncode != 0, r.stdout
    err = r.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert text in err, err


def test_push_dry_run_lists_files(tmp_path):
    out = gated_output(tmp_path)
    r = cli("push", str(out), "--repo", "me/demo", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "data/train-00000.parquet" in r.stdout and "README.md" in r.stdout and "nothing uploaded" in r.stdout
    # hard links, not copies: the staged shard is the same file
    staged = out / "hub_upload" / "data" / "train-00000.parquet"
    assert os.path.samefile(staged, out / "data" / "train-00000.parquet")


def test_push_refuses_ungated_or_failed_data(tmp_path):
    out = write_output(tmp_path / "out", rows(20))  # no gate in manifest
    one_line_error(cli("push", str(out), "--repo", "me/demo", "--dry-run", cwd=tmp_path), "no quality gate recorded")
    m = json.loads((out / "manifest.json").read_text())
    m["gate"] = {"passed": False}
    (out / "manifest.json").write_text(json.dumps(m))
    one_line_error(cli("push", str(out), "--repo", "me/demo", "--dry-run", cwd=tmp_path), "quality gate failed")
    r = cli("push", str(out), "--repo", "me/demo", "--dry-run", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    one_line_error(cli("push", str(out), "--repo", "nouser", cwd=tmp_path), "expected user/name")


def test_push_offline_and_unauthenticated_are_one_line(tmp_path):
    out = gated_output(tmp_path)
    # a closed local port stands in for "offline": connection refused, no DNS, no internet used
    one_line_error(cli("push", str(out), "--repo", "me/demo", cwd=tmp_path,
                       env_extra={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_" + "x" * 34}),
                   "cannot reach the Hugging Face Hub")
    one_line_error(cli("push", str(out), "--repo", "me/demo", cwd=tmp_path,
                       env_extra={"HF_ENDPOINT": "http://127.0.0.1:9"}), "not logged in")

"""`instructkit push`: upload a gated dataset (Parquet shards + card + report) to the Hugging Face Hub.

What is uploaded is first assembled in `OUT/hub_upload/` (hard links, so no copy of the data) and
listed in `OUT/hub_upload.txt`; `--dry-run` stops there, so what you inspect is exactly what
would be sent. The upload is resumable: files already on the Hub with the same size and hash are
skipped, and the rest is committed in groups so an interrupted push keeps what it finished.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from instructkit.errors import ConfigError, DataError, GateFailed

STAGE_DIR = "hub_upload"
EXTRA_FILES = ("README.md", "report.html", "report.json", "manifest.json")
FILES_PER_COMMIT = 50


def stage(out_dir: Path | str, force: bool = False, license: str = "other") -> tuple[Path, list[str]]:
    """Build OUT/hub_upload/ (what the Hub repo will contain) and OUT/hub_upload.txt; return both."""
    from instructkit.quality import card, stats

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise DataError(f"{out_dir}: no such output directory (run a pipeline first)")
    manifest = stats.load_manifest(out_dir)
    if not manifest:
        raise DataError(f"{out_dir}/manifest.json: missing; push needs a finished pipeline output")
    gate = manifest.get("gate")
    if not force:
        if gate is None:
            raise GateFailed(f"{out_dir}: no quality gate recorded in manifest.json; add a quality_gate step or pass --force")
        if not gate.get("passed"):
            raise GateFailed(f"{out_dir}: the quality gate failed (data is in quarantine/); fix the data or pass --force")
    data = sorted((out_dir / "data").glob("*.parquet")) or (sorted((out_dir / "quarantine" / "data").glob("*.parquet"))
                                                             if force else [])
    if not data:
        raise DataError(f"{out_dir}/data: no Parquet shards to upload")
    if not (out_dir / "README.md").exists():  # a run without the report step still gets an honest card
        card.write(out_dir, stats.compute(out_dir, manifest, data), manifest, license=license)

    dest = out_dir / STAGE_DIR
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "data").mkdir(parents=True)
    pairs = [(p, f"data/{p.name}") for p in data] + [(out_dir / n, n) for n in EXTRA_FILES if (out_dir / n).exists()]
    for src, rel in pairs:
        target = dest / rel
        try:
            os.link(src, target)
        except OSError:
            shutil.copy2(src, target)
    files = sorted(rel for _, rel in pairs)
    (out_dir / f"{STAGE_DIR}.txt").write_text("\n".join(files) + "\n")
    return dest, files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _friendly(exc: Exception, repo: str) -> Exception:
    """Turn Hub/network exceptions into one line the user can act on."""
    from huggingface_hub import errors as hf

    name = type(exc).__name__
    if isinstance(exc, hf.LocalTokenNotFoundError):
        return ConfigError("not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return ConfigError(f"the Hub refused the token for {repo} (HTTP {status}): check HF_TOKEN / `hf auth login` "
                           f"and that it has write access")
    if isinstance(exc, hf.HfHubHTTPError):
        return DataError(f"the Hub answered HTTP {status} for {repo}: {str(exc).splitlines()[0]}")
    if isinstance(exc, (OSError, ConnectionError)) or "Connect" in name or "Timeout" in name or "Network" in name:
        return DataError(f"cannot reach the Hugging Face Hub ({name}); are you offline? Nothing was uploaded "
                         f"beyond what an earlier push finished (re-run to resume)")
    return DataError(f"push to {repo} failed: {name}: {str(exc).splitlines()[0] if str(exc) else ''}")


def push(out_dir: Path | str, repo: str, private: bool = False, dry_run: bool = False, force: bool = False,
         token: str | None = None, license: str = "other") -> dict[str, Any]:
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ConfigError(f"--repo: expected user/name, got {repo!r}")
    folder, files = stage(out_dir, force=force, license=license)
    result: dict[str, Any] = {"repo": repo, "folder": str(folder), "files": files, "dry_run": dry_run}
    if dry_run:
        return result
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.whoami()
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        remote = {}
        for item in api.list_repo_tree(repo, repo_type="dataset", recursive=True):
            lfs = getattr(item, "lfs", None)
            remote[item.path] = (getattr(item, "size", None), getattr(lfs, "sha256", None) if lfs else None)
        todo = []
        for rel in files:
            size, sha = remote.get(rel, (None, None))
            local = folder / rel
            if sha is not None and size == local.stat().st_size and sha == _sha256(local):
                continue  # already on the Hub (an earlier, interrupted push)
            todo.append(rel)
        for i in range(0, len(todo), FILES_PER_COMMIT):
            group = todo[i:i + FILES_PER_COMMIT]
            api.upload_folder(repo_id=repo, folder_path=folder, repo_type="dataset", allow_patterns=group,
                              commit_message=f"instructkit push: {len(group)} files ({i + len(group)}/{len(todo)})")
    except (ConfigError, DataError):
        raise
    except Exception as exc:  # noqa: BLE001 - every Hub/network failure becomes one line
        raise _friendly(exc, repo) from None
    result.update(uploaded=todo, skipped=sorted(set(files) - set(todo)), url=f"https://huggingface.co/datasets/{repo}")
    return result

"""Dataset card (README.md with Hub YAML front matter), written from the manifest and the stats.

The front matter's `configs` is what makes `datasets.load_dataset("user/name")` (and on a local
folder) find the right Parquet shards per split; the body says honestly what was done and lost.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def size_category(n: int) -> str:
    for limit, label in SIZE_CATEGORIES:
        if n < limit:
            return label
    return "n>1B"


def _languages(stats: dict[str, Any]) -> list[str]:
    """Languages with at least 1% of rows in the main language column (ISO codes only)."""
    main = stats.get("main_language") or {}
    shares = (stats.get("languages") or {}).get(main.get("column"), {})
    out = [lang.split("-")[0] for lang, share in shares.items()
           if share >= 0.01 and re.fullmatch(r"[a-z]{2,3}(-[a-z]+)?", lang)]
    return list(dict.fromkeys(out))


def front_matter(stats: dict[str, Any], manifest: dict[str, Any], license: str = "other",
                 pretty_name: str | None = None) -> dict[str, Any]:
    splits = sorted((stats.get("splits") or {}).keys(), key=lambda s: (s != "train", s))
    fm: dict[str, Any] = {
        "license": license,
        "task_categories": ["text-generation"],
        "tags": ["instruction-tuning", "sft", "instructkit"],
        "size_categories": [size_category(int(stats.get("rows", 0)))],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits]}],
    }
    langs = _languages(stats)
    if langs:
        fm["language"] = langs
    if pretty_name or manifest.get("pipeline"):
        fm["pretty_name"] = pretty_name or manifest.get("pipeline")
    return fm


def render(stats: dict[str, Any], manifest: dict[str, Any], license: str = "other", pretty_name: str | None = None) -> str:
    fm = front_matter(stats, manifest, license, pretty_name)
    counts = manifest.get("counts", {})
    title = fm.get("pretty_name") or Path(stats.get("out_dir", "dataset")).name
    lines = [f"# {title}", "",
             f"Instruction-tuning (SFT) dataset built with [instructkit](https://github.com/) "
             f"(pipeline `{manifest.get('pipeline', '?')}`, config hash `{manifest.get('config_hash', '?')}`).", "",
             "## Size", "",
             f"- rows read: {counts.get('read', '?')}, written: {stats.get('rows', 0)}, rejected: {counts.get('rejected', '?')}"]
    for s, n in sorted((stats.get("splits") or {}).items()):
        lines.append(f"- split `{s}`: {n} rows")
    lines += ["", "## Sources", ""]
    for inp in manifest.get("inputs", []) or []:
        lines.append(f"- `{inp.get('path', inp.get('name', '?'))}`"
                     + (f" ({inp.get('format')})" if inp.get("format") else "")
                     + (f": {inp['rows']} rows" if "rows" in inp else ""))
    if not manifest.get("inputs"):
        lines.append("- (not recorded)")
    lines += ["", "## Processing steps", "", "| stage | rows in | rows out | rejected |", "|---|---|---|---|"]
    for st in manifest.get("stages", []) or []:
        rej = ", ".join(f"{k}: {v}" for k, v in (st.get("rejected") or {}).items()) or "–"
        lines.append(f"| `{st.get('stage')}` | {st.get('rows_in', '')} | {st.get('rows_out', '')} | {rej} |")
    shares = stats.get("reject_shares") or {}
    if shares:
        lines += ["", "## Reject reasons", "", "| reason | share of rows read |", "|---|---|"]
        lines += [f"| `{r}` | {s:.2%} |" for r, s in shares.items()]
    gate = manifest.get("gate")
    lines += ["", "## Quality gate", ""]
    if gate and gate.get("results"):
        lines.append(f"Suite `{gate['suite']['name']}` ({gate.get('mode')} mode): "
                     f"**{'passed' if gate.get('passed') else 'FAILED'}**.")
        lines += ["", "| expectation | result | observed | expected |", "|---|---|---|---|"]
        for r in gate["results"]:
            res = "skipped" if r.get("status") == "skipped" else "pass" if r["success"] else "FAIL"
            lines.append(f"| {r['expectation']} | {res} | {r.get('observed', '')} | {r.get('expected', '')} |")
    else:
        lines.append("No quality gate was run on this dataset.")
    if stats.get("n_tokens"):
        d = stats["n_tokens"]["describe"]
        lines += ["", "## Lengths", "", f"Tokens per row: median {d.get('p50')}, p99 {d.get('p99')}, max {d.get('max')}."]
    main = stats.get("main_language")
    if main:
        lines += ["", f"Main language: `{main['language']}` ({main['share']:.1%} of rows, column `{main['column']}`)."]
    lines += ["", "## Columns", "", ", ".join(f"`{c}`" for c in stats.get("columns", [])), "",
              "See `report.html` for charts and examples.", ""]
    return "---\n" + yaml.safe_dump(fm, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(lines)


def write(out_dir: Path | str, stats: dict[str, Any], manifest: dict[str, Any], license: str = "other",
          pretty_name: str | None = None) -> Path:
    path = Path(out_dir) / "README.md"
    path.write_text(render(stats, manifest, license, pretty_name), encoding="utf-8")
    return path


def parse_front_matter(text: str) -> dict[str, Any]:
    """The YAML between the leading `---` lines (what the Hub reads)."""
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if not m:
        raise ValueError("no YAML front matter")
    return yaml.safe_load(m.group(1))

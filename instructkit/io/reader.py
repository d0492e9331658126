"""`read_input`: one InputSpec -> a stream of canonical batches with provenance columns.

Bad records never stop the stream (unless `on_error: fail`): they come out with `_error` set
and the engine routes them to rejects. Problems with a whole file (missing, empty, a
`format:` that fits none of its records) raise DataError with one line naming the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from instructkit.errors import DataError
from instructkit.io import files
from instructkit.io.convert import Plan, canonical_rows, make_plan, to_canonical
from instructkit.io.detect import REQUIRED, detect, detect_fields, fields_of, sample_records
from instructkit.io.formats import FORMATS
from instructkit.io.spec import InputSpec


def read_input(spec: InputSpec, batch_size: int = 8192) -> Iterator[pa.Table]:
    """Yield batches with exactly `instructkit.schema.provenance_schema()` columns."""
    if spec.format == "hf" or spec.file_type == "hf" or _is_hub_name(spec):
        yield from _read_hf(spec, spec.path, batch_size)
        return
    for p in files.expand(spec.path):
        yield from read_file(spec, p, batch_size)


def _is_hub_name(spec: InputSpec) -> bool:
    return spec.format == "hf" and not Path(spec.path).exists()


def read_file(spec: InputSpec, p: Path, batch_size: int = 8192) -> Iterator[pa.Table]:
    ftype = files.file_type(p, spec.file_type)
    if ftype == "hf":
        yield from _read_hf(spec, str(p), batch_size)
        return
    if files.file_is_empty(p):
        raise DataError(f"{p}: the file is empty")
    fmt = spec.format
    if fmt == "auto":
        fmt = detect(p, ftype, spec.columns).format
    else:
        _check_override(spec, p, ftype, fmt)
    label = str(p)
    if fmt == "oasst":
        yield from _rebatch(_read_oasst(spec, p, ftype, label), batch_size)
        return
    plan = make_plan(FORMATS[fmt], spec)
    for raw in _raw_tables(p, ftype, plan, spec, batch_size):
        yield from _rebatch([to_canonical(raw, plan, spec, label)], batch_size)


def _check_override(spec: InputSpec, p: Path, ftype: str, fmt: str) -> None:
    """A `format:` that matches none of the first records is a config mistake, not N rejects."""
    flds = fields_of(sample_records(p, ftype))
    if not flds:
        return  # nothing parsable at the start: the per-line path will say why, row by row
    inverse = {v: k for k, v in spec.columns.items()}
    have = {inverse.get(f, f) for f in flds}
    need = REQUIRED.get(fmt, ())
    if need and not any(k in have for k in need):
        guess = detect_fields(flds, spec.columns)
        hint = f"; it looks like '{guess[0]}'" if guess else ""
        raise DataError(f"{p}: format '{fmt}' expects field(s) {', '.join(need)} but the records have "
                        f"{', '.join(flds[:8])}{hint} (fix format:, or map fields with columns:)")


def _raw_tables(p: Path, ftype: str, plan: Plan, spec: InputSpec, batch_size: int) -> Iterator[pa.Table]:
    fix = plan.fmt.fix_row
    if ftype == "jsonl":
        yield from files.read_jsonl(p, plan.types, plan.id_field, spec.max_record_bytes, fix)
    elif ftype == "json":
        records = files.read_json_array(p, spec.max_record_bytes)
        for start in range(0, len(records), batch_size):
            part = records[start:start + batch_size]
            yield files.rows_to_table(part, [None] * len(part), np.arange(start + 1, start + 1 + len(part)),
                                      plan.types, plan.id_field, fix)
    else:
        gen = {"csv": lambda: files.read_csv(p, ",", batch_size), "tsv": lambda: files.read_csv(p, "\t", batch_size),
               "parquet": lambda: files.read_parquet(p, batch_size), "arrow": lambda: files.read_arrow(p, batch_size)}
        if ftype not in gen:
            raise DataError(f"{p}: file_type '{ftype}' is not readable here")
        for t in gen[ftype]():
            yield files.conform(t, plan.types, plan.id_field, fix)


def _read_oasst(spec: InputSpec, p: Path, ftype: str, label: str) -> Iterator[pa.Table]:
    from instructkit.io.formats import oasst

    rows: list[dict] = []
    if ftype == "json":
        for i, tree in enumerate(files.read_json_array(p, spec.max_record_bytes)):
            rows.extend(oasst.tree_rows(tree, i + 1, spec.options))
            if len(rows) >= 4096:
                yield canonical_rows(rows, spec, label)
                rows = []
    elif ftype == "jsonl":
        for first, chunk in files.iter_chunks(p, spec.max_record_bytes):
            if isinstance(chunk, files.Oversized):
                rows.append({"id": chunk.digest, "messages": [], "_line": first,
                             "_error": f"oversized_record: {chunk.nbytes} bytes > max_record_bytes {spec.max_record_bytes}"})
                continue
            starts, ends, has = files.split_lines(chunk)
            for k in np.flatnonzero(has):
                raw = chunk[starts[k]:ends[k]]
                tree, err = files.parse_line(raw)
                if err:
                    import xxhash

                    rows.append({"id": xxhash.xxh3_128_hexdigest(raw), "messages": [], "_line": first + int(k),
                                 "_error": err})
                else:
                    rows.extend(oasst.tree_rows(tree, first + int(k), spec.options))
            if len(rows) >= 4096:
                yield canonical_rows(rows, spec, label)
                rows = []
    else:
        raise DataError(f"{p}: OASST trees are read from JSON Lines or JSON files, not {ftype}")
    if rows:
        yield canonical_rows(rows, spec, label)


def _read_hf(spec: InputSpec, path: str, batch_size: int) -> Iterator[pa.Table]:
    from instructkit.io.formats import hf

    split = spec.options.get("split")
    fmt = spec.options.get("record_format", "auto")
    if spec.format not in ("hf", "auto"):
        fmt = spec.format
    if fmt == "auto":
        cols = hf.column_names(path, split)
        found = detect_fields(cols, spec.columns)
        if found is None:
            raise DataError(f"{path}: cannot detect the record format from columns {', '.join(cols[:10])}; "
                            f"set options.record_format (alpaca, sharegpt, openai, ...)")
        fmt = found[0]
    if fmt == "oasst":
        raise DataError(f"{path}: OASST trees are read from the *_trees.jsonl export, not a datasets dir")
    plan = make_plan(FORMATS[fmt], spec)
    for t in hf.iter_tables(path, split, batch_size):
        raw = files.conform(t, plan.types, plan.id_field, plan.fmt.fix_row)
        yield to_canonical(raw, plan, spec, path)


def _rebatch(tables, batch_size: int) -> Iterator[pa.Table]:
    for t in tables:
        for start in range(0, t.num_rows, batch_size):
            yield t.slice(start, batch_size)

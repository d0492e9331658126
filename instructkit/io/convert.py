"""Source-field tables -> canonical batches (`id`, `messages`, `source`, `meta`, `_file`,
`_line`, `_error`), written once for every format.

Ids: the record's own id field when it has one (cast to string), else
`instructkit.messages.content_ids` (xxh3-128 hex of the role/content sequence), so the same
conversation gets the same id everywhere. A bad row without an own id gets the xxh3-128 of
its raw line when we have it, else of `file:line`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from instructkit.errors import DataError
from instructkit.io.assemble import build, listed, single
from instructkit.io.formats.base import Context, Errors, Format
from instructkit.io.spec import InputSpec
from instructkit.schema import MESSAGES_TYPE, provenance_schema

RESERVED = ("_line", "_error", "_extra", "_rawid")


@dataclass
class Plan:
    """How one input's source fields map onto a format (computed once per input)."""

    fmt: Format
    types: dict[str, pa.DataType]  # source field name -> expected Arrow type
    rename: dict[str, str]  # source field name -> format field name
    names: dict[str, str]  # nested children: format name -> source name
    id_field: str  # source field name holding the record's own id


def make_plan(fmt: Format, spec: InputSpec) -> Plan:
    cols = dict(spec.columns)
    names = {k: cols.get(k, v) for k, v in fmt.children.items()}
    fmt_types = fmt.fields(names)
    types = {cols.get(k, k): t for k, t in fmt_types.items()}
    rename = {cols.get(k, k): k for k in fmt_types}
    id_field = cols.get("id") or spec.options.get("id_field") or "id"
    return Plan(fmt, types, rename, names, id_field)


def source_name(spec: InputSpec) -> str:
    """`name:` of the input, else its file name without extensions (for a glob, the part
    before the first wildcard, or the folder name): one name per input, not per shard."""
    if spec.name:
        return spec.name
    from pathlib import Path

    p = Path(spec.path.rstrip("/"))
    base = p.name
    wild = min((base.find(c) for c in "*?[" if c in base), default=-1)
    if wild >= 0:
        base = base[:wild].rstrip(".-_ ")
        if not base:
            return p.parent.name or "input"
    if base.endswith(".gz"):
        base = base[:-3]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem or "input"


def to_canonical(raw: pa.Table, plan: Plan, spec: InputSpec, file_label: str) -> pa.Table:
    n = raw.num_rows
    errors = Errors(n, raw.column("_error").combine_chunks() if "_error" in raw.column_names else None)
    unparsed = ~errors.ok  # rows that failed before any field was read: nothing to recover
    renamed = raw.rename_columns([plan.rename.get(c, c) for c in raw.column_names])
    ctx = Context(renamed, errors, spec.options, plan.names)
    messages = plan.fmt.convert(ctx)
    if spec.options.get("system"):
        messages = _default_system(messages, spec.options["system"])
    if unparsed.any():
        messages = pc.if_else(pa.array(unparsed), pa.array([[]] * n, MESSAGES_TYPE), messages)
    lengths = pc.list_value_length(messages).fill_null(0).to_numpy(zero_copy_only=False)
    errors.mark(lengths == 0, "empty_conversation")

    lines = raw.column("_line").combine_chunks() if "_line" in raw.column_names else pa.array(np.arange(1, n + 1))
    ids = _ids(raw, plan, messages, errors, lines, file_label, spec.options.get("id_prefix", ""))
    meta = _meta(raw, plan, ctx)
    err_arr = pa.array(errors.values, pa.string())
    if spec.on_error == "fail" and not errors.ok.all():
        first = int(np.flatnonzero(~errors.ok)[0])
        raise DataError(f"{file_label}:{lines[first].as_py()}: {errors.values[first]}")
    table = pa.table(
        {
            "id": ids,
            "messages": messages,
            "source": pa.repeat(pa.scalar(source_name(spec), pa.string()), n),
            "meta": meta,
            "_file": pa.repeat(pa.scalar(file_label, pa.string()), n),
            "_line": lines.cast(pa.int64()),
            "_error": err_arr,
        }
    )
    return table.cast(provenance_schema())


def _default_system(messages: pa.Array, text: str) -> pa.Array:
    n = len(messages)
    flat = pc.list_flatten(messages)
    rows = pc.list_parent_indices(messages).to_numpy(zero_copy_only=False)
    starts = np.full(n, -1, dtype=np.int64)
    if len(rows):
        uniq, idx = np.unique(rows, return_index=True)
        starts[uniq] = idx
    roles = flat.field("role").to_numpy(zero_copy_only=False)
    has_system = np.zeros(n, dtype=bool)
    ok = starts >= 0
    has_system[ok] = roles[starts[ok]] == "system"
    need = ~has_system
    sys_piece = single(pa.array([text] * n, pa.string()), "system", need)
    return build(n, [sys_piece, listed(messages, flat.field("role"), flat.field("content"))])


def _ids(raw: pa.Table, plan: Plan, messages: pa.Array, errors: Errors, lines: pa.Array, file_label: str,
         prefix: str) -> pa.Array:
    import xxhash

    n = raw.num_rows
    own = None
    if plan.id_field in raw.column_names:
        col = raw.column(plan.id_field).combine_chunks()
        if pa.types.is_string(col.type) or pa.types.is_integer(col.type) or pa.types.is_large_string(col.type):
            own = col.cast(pa.string())
    all_ok = bool(errors.ok.all())
    if own is not None and own.null_count == 0:
        ids_arr = own
    elif own is None and all_ok and n:
        ids_arr = content_ids(messages)
    else:
        ids_arr = None
    if ids_arr is not None:
        if prefix:
            ids_arr = pc.binary_join_element_wise(pa.repeat(pa.scalar(prefix, pa.string()), n), ids_arr, "")
        return ids_arr
    ids = np.full(n, None, dtype=object)
    if own is not None:
        ids[:] = own.to_numpy(zero_copy_only=False)
    missing = np.equal(ids, None)
    good_missing = missing & errors.ok
    if good_missing.all() and n:
        ids = content_ids(messages).to_numpy(zero_copy_only=False).astype(object)
    elif good_missing.any():
        sel = np.flatnonzero(good_missing)
        ids[sel] = content_ids(messages.take(pa.array(sel))).to_numpy(zero_copy_only=False)
    bad_missing = np.flatnonzero(np.equal(ids, None))
    if len(bad_missing):
        raw_ids = raw.column("_rawid").to_pylist() if "_rawid" in raw.column_names else [None] * n
        ln = lines.to_pylist()
        for i in bad_missing:
            ids[i] = raw_ids[i] or xxhash.xxh3_128_hexdigest(f"{file_label}:{ln[i]}".encode())
    arr = pa.array(ids, pa.string())
    if prefix:
        arr = pc.binary_join_element_wise(pa.array([prefix] * n, pa.string()), arr, "")
    return arr


def content_ids(messages: pa.Array) -> pa.Array:
    """The one content-hash id definition, `instructkit.messages.content_ids`."""
    from instructkit.messages import content_ids as ids

    return ids(messages)


def _meta(raw: pa.Table, plan: Plan, ctx: Context) -> pa.Array:
    """JSON object of the fields the format does not turn into messages (kept for later steps)."""
    n = raw.num_rows
    if plan.fmt.name == "canonical" and "meta" in raw.column_names and "_extra" not in raw.column_names:
        m = raw.column("meta").combine_chunks().cast(pa.string())
        return pc.fill_null(m, "{}")
    if "_extra" in raw.column_names:
        return pc.fill_null(raw.column("_extra").combine_chunks(), "{}")
    extras = [c for c in raw.column_names if c not in plan.types and c != plan.id_field and c not in RESERVED]
    if not extras:
        return pa.repeat(pa.scalar("{}", pa.string()), n)
    sub = raw.select(extras)
    try:
        df = pl.from_arrow(sub)
        assert isinstance(df, pl.DataFrame)
        out = df.select(pl.struct(pl.all()).struct.json_encode().alias("m"))["m"].to_arrow()
        return out.cast(pa.string())
    except Exception:  # exotic types polars cannot encode: fall back to Python, still correct
        return pa.array([orjson.dumps(r, default=str).decode() for r in sub.to_pylist()], pa.string())


def empty_batch() -> pa.Table:
    return provenance_schema().empty_table()


def canonical_rows(rows: list[dict[str, Any]], spec: InputSpec, file_label: str) -> pa.Table:
    """Canonical batch from Python rows (OASST trees): {id, messages, meta, _line, _error}."""
    n = len(rows)
    if spec.on_error == "fail":
        for r in rows:
            if r.get("_error"):
                raise DataError(f"{file_label}:{r['_line']}: {r['_error']}")
    prefix = spec.options.get("id_prefix", "")
    return pa.table(
        {
            "id": pa.array([prefix + r["id"] for r in rows], pa.string()),
            "messages": pa.array([r["messages"] for r in rows], MESSAGES_TYPE),
            "source": pa.array([source_name(spec)] * n, pa.string()),
            "meta": pa.array([r.get("meta", "{}") for r in rows], pa.string()),
            "_file": pa.array([file_label] * n, pa.string()),
            "_line": pa.array([r["_line"] for r in rows], pa.int64()),
            "_error": pa.array([r.get("_error") for r in rows], pa.string()),
        },
        schema=provenance_schema(),
    )

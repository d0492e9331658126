"""Containers: turn files (JSONL, JSON arrays, gzip, CSV/TSV, Parquet, Arrow IPC) into Arrow
tables of *source* fields, one row per record, with `_line` and `_error` columns.

The fast path parses newline-delimited JSON with pyarrow's C++ reader in byte chunks: no
Python per row. A chunk that pyarrow refuses (a malformed line, a wrong-typed field, invalid
UTF-8, a line over the size limit) is re-read line by line in Python so that each bad line
gets its own reason and exact line number while its good neighbours are still kept.
"""
from __future__ import annotations

import glob
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj

from instructkit.errors import DataError

CHUNK_BYTES = 8 << 20
BOM = b"\xef\xbb\xbf"
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 13, 32]] = True

EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
}


# ---------------------------------------------------------------------------------- paths
def is_hf_dir(p: Path) -> bool:
    return p.is_dir() and any((p / n).exists() for n in ("dataset_info.json", "state.json", "dataset_dict.json"))


def expand(path: str) -> list[Path]:
    """The files an input path names: a file, a glob, or a directory of data files."""
    if any(ch in path for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(path, recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"{path}: the glob matched no files")
        return files
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        if is_hf_dir(p):
            return [p]
        files = sorted(f for f in p.rglob("*") if f.is_file() and _ext(f) in EXTENSIONS)
        if not files:
            raise DataError(f"{path}: the directory has no data files (.jsonl, .json, .csv, .tsv, .parquet, .arrow)")
        return files
    raise DataError(f"{path}: no such file or directory")


def _ext(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def file_type(p: Path, override: str | None = None) -> str:
    if override:
        return override
    if is_hf_dir(p):
        return "hf"
    ftype = EXTENSIONS.get(_ext(p))
    if ftype is None:
        raise DataError(f"{p}: unknown file type '{_ext(p) or p.name}' (set file_type: json, jsonl, csv, tsv, "
                        f"parquet or arrow)")
    if ftype == "json" and _looks_like_jsonl(p):
        return "jsonl"
    return ftype


def is_gzip(p: Path) -> bool:
    with open(p, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_bytes(p: Path) -> Any:
    """A binary stream of the file's (decompressed) bytes."""
    return pa.input_stream(str(p), compression="gzip" if is_gzip(p) else None)


def head_bytes(p: Path, n: int = 1 << 16) -> bytes:
    with open_bytes(p) as fh:
        data = fh.read(n)
    return data[len(BOM):] if data.startswith(BOM) else data


def _looks_like_jsonl(p: Path) -> bool:
    """`.json` files are often JSON Lines in disguise: a first line that is a whole JSON object
    followed by more lines says so; a pretty-printed or single-line document does not."""
    head = head_bytes(p, 1 << 20).lstrip()
    if head[:1] != b"{":
        return False
    first, _, rest = head.partition(b"\n")
    try:
        ok = isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False
    return ok and bool(rest.strip())


# ---------------------------------------------------------------------------------- lines
@dataclass
class Oversized:
    nbytes: int
    digest: str


def iter_chunks(p: Path, max_record: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes | Oversized]]:
    """(first line number, chunk of whole lines) or (line number, Oversized) for a line over the limit.

    Memory stays bounded by `chunk_bytes + max_record`: an oversized line is hashed while it
    streams past and never held.
    """
    import xxhash

    line = 1
    buf = b""
    first = True
    with open_bytes(p) as fh:
        while True:
            data = fh.read(chunk_bytes)
            if first:
                first = False
                if data.startswith(BOM):
                    data = data[len(BOM):]
            if not data:
                break
            cut_data = data.rfind(b"\n")
            if cut_data >= 0:  # the common case: one copy to join the carried tail, no re-scan
                chunk = buf + data[: cut_data + 1] if buf else data[: cut_data + 1]
                buf = data[cut_data + 1:]
                yield line, chunk
                line += chunk.count(b"\n")
                continue
            buf += data
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) > max_record:
                    h = xxhash.xxh3_128(buf)
                    size = len(buf)
                    buf = b""
                    while True:
                        data = fh.read(chunk_bytes)
                        if not data:
                            break
                        k = data.find(b"\n")
                        if k < 0:
                            h.update(data)
                            size += len(data)
                            continue
                        h.update(data[:k])
                        size += k
                        buf = data[k + 1:]
                        break
                    yield line, Oversized(size, h.hexdigest())
                    line += 1
                continue
            chunk, buf = buf[: cut + 1], buf[cut + 1:]
            yield line, chunk
            line += chunk.count(b"\n")
    if buf:
        if len(buf) > max_record:
            import xxhash as _x

            yield line, Oversized(len(buf), _x.xxh3_128_hexdigest(buf))
        else:
            yield line, buf + b"\n"


def split_lines(chunk: bytes, exact: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, has_content) of every line of a chunk that ends with a newline.

    `exact=False` only treats empty lines as blank (cheap); `exact=True` also finds lines of
    only spaces/tabs/CR, which costs a pass over every byte and is used only when needed.
    """
    data = np.frombuffer(chunk, dtype=np.uint8)
    nl = np.flatnonzero(data == 10)
    starts = np.empty(len(nl), dtype=np.int64)
    starts[:1] = 0
    starts[1:] = nl[:-1] + 1
    if not exact:
        length = nl - starts
        cr_only = (length == 1) & (data[np.maximum(nl - 1, 0)] == 13)
        return starts, nl, (length > 0) & ~cr_only
    content = np.cumsum(~_WS[data], dtype=np.int64)
    before = np.where(starts > 0, content[np.maximum(starts - 1, 0)], 0)
    has = content[nl] - before > 0
    return starts, nl, has


# ---------------------------------------------------------------------------------- typing
def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _describe(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_list(t):
        return f"array of {_describe(t.value_type)}"
    if pa.types.is_struct(t):
        return "object {" + ", ".join(f.name for f in t) + "}"
    return str(t)


def check_value(v: Any, t: pa.DataType, path: str) -> str | None:
    """None if `v` fits Arrow type `t` (null always fits), else a `wrong_type` message."""
    if v is None:
        return None
    if pa.types.is_string(t):
        ok = isinstance(v, str)
    elif pa.types.is_list(t):
        if not isinstance(v, list):
            ok = False
        else:
            for i, e in enumerate(v):
                err = check_value(e, t.value_type, f"{path}[{i}]")
                if err:
                    return err
            return None
    elif pa.types.is_struct(t):
        if not isinstance(v, dict):
            ok = False
        else:
            for f in t:
                err = check_value(v.get(f.name), f.type, f"{path}.{f.name}")
                if err:
                    return err
            return None
    else:
        return None
    if ok:
        return None
    return f"wrong_type: field '{path}': expected {_describe(t)}, got {_kind(v)}"


def _same_kind(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_null(actual):
        return True
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual) or pa.types.is_string_view(actual)
    if pa.types.is_list(expected):
        if pa.types.is_list(actual) or pa.types.is_large_list(actual) or pa.types.is_fixed_size_list(actual):
            return _same_kind(actual.value_type, expected.value_type)
        return False
    if pa.types.is_struct(expected):
        if not pa.types.is_struct(actual):
            return False
        names = {f.name: f.type for f in actual}
        return all(f.name in names and _same_kind(names[f.name], f.type) for f in expected)
    return actual == expected


def conform(table: pa.Table, types: dict[str, pa.DataType], id_field: str,
            fix_row: Callable[[dict], dict] | None = None) -> pa.Table:
    """Cast known fields to their declared types; a batch with a wrong-typed field goes per row."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if name in types:
            if not _same_kind(col.type, types[name]):
                n = table.num_rows
                lines = table.column("_line").to_numpy() if "_line" in table.column_names else np.arange(1, n + 1)
                errors = table.column("_error").to_pylist() if "_error" in table.column_names else [None] * n
                data = table.drop_columns([c for c in ("_line", "_error") if c in table.column_names])
                return rows_to_table(data.to_pylist(), errors, lines, types, id_field, fix_row)
            if col.type != types[name]:
                col = col.cast(types[name])
        cols[name] = col
    return pa.table(cols)


def rows_to_table(rows: list[Any], errors: list[str | None], lines: np.ndarray | list[int],
                  types: dict[str, pa.DataType], id_field: str,
                  fix_row: Callable[[dict], dict] | None = None, raw_ids: list[str | None] | None = None) -> pa.Table:
    """The per-row path: type-check parsed records, keep extras as one JSON column (`_extra`)."""
    n = len(rows)
    errors = list(errors)
    known: dict[str, list[Any]] = {k: [None] * n for k in types}
    ids: list[str | None] = [None] * n
    extra: list[str | None] = [None] * n
    for i, row in enumerate(rows):
        if errors[i] is not None:
            continue
        if not isinstance(row, dict):
            errors[i] = f"not_an_object: expected a JSON object per record, got {_kind(row)}"
            continue
        if fix_row is not None:
            row = fix_row(row)
        for k, t in types.items():
            err = check_value(row.get(k), t, k)
            if err:
                errors[i] = err
                break
        else:
            for k in types:
                known[k][i] = row.get(k)
        rid = row.get(id_field)
        if isinstance(rid, (str, int)) and not isinstance(rid, bool):
            ids[i] = str(rid)
        rest = {k: v for k, v in row.items() if k not in types and k != id_field}
        extra[i] = orjson.dumps(rest, option=orjson.OPT_NON_STR_KEYS).decode() if rest else "{}"
    cols: dict[str, pa.Array] = {k: pa.array(v, t) for k, v in known.items() for t in [types[k]]}
    cols[id_field] = pa.array(ids, pa.string())
    cols["_extra"] = pa.array(extra, pa.string())
    cols["_line"] = pa.array(np.asarray(lines, dtype=np.int64))
    cols["_error"] = pa.array(errors, pa.string())
    if raw_ids is not None:
        cols["_rawid"] = pa.array(raw_ids, pa.string())
    return pa.table(cols)


# ---------------------------------------------------------------------------------- JSON Lines
def parse_line(raw: bytes) -> tuple[Any, str | None]:
    """(record, None) or (None, reason) for one line, with the most useful message we can give."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid_utf8: byte 0x{raw[exc.start]:02x} at col {exc.start + 1}"
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:  # the stdlib message is the clearer one
            return None, f"malformed_json: {exc.msg} (col {exc.colno})"
        except ValueError as exc:
            return None, f"malformed_json: {exc}"
        return None, "malformed_json: not valid JSON"


def lines_to_table(chunk: bytes, first_line: int, types: dict[str, pa.DataType], id_field: str,
                   max_record: int, fix_row: Callable[[dict], dict] | None = None) -> pa.Table:
    import xxhash

    starts, ends, has = split_lines(chunk)
    rows, errors, lines, raw_ids = [], [], [], []
    for k in np.flatnonzero(has):
        raw = chunk[starts[k]:ends[k]]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        lines.append(first_line + int(k))
        if len(raw) > max_record:
            rows.append(None)
            errors.append(f"oversized_record: {len(raw)} bytes > max_record_bytes {max_record}")
            raw_ids.append(xxhash.xxh3_128_hexdigest(raw))
            continue
        rec, err = parse_line(raw)
        rows.append(rec)
        errors.append(err)
        raw_ids.append(xxhash.xxh3_128_hexdigest(raw) if err else None)
    return rows_to_table(rows, errors, lines, types, id_field, fix_row, raw_ids)


def read_jsonl(p: Path, types: dict[str, pa.DataType], id_field: str, max_record: int,
               fix_row: Callable[[dict], dict] | None = None, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.Table]:
    schema = pa.schema([pa.field(k, t) for k, t in types.items()])
    for first_line, chunk in iter_chunks(p, max_record, chunk_bytes):
        if isinstance(chunk, Oversized):
            yield rows_to_table([None], [f"oversized_record: {chunk.nbytes} bytes > max_record_bytes {max_record}"],
                                [first_line], types, id_field, raw_ids=[chunk.digest])
            continue
        for table in _parse_chunk(chunk, first_line, schema, types, id_field, max_record, fix_row):
            if table.num_rows:
                yield table


#: below this many lines a refused chunk is read line by line instead of being split again
_BISECT_MIN_LINES = 256


def _parse_chunk(chunk: bytes, first_line: int, schema: pa.Schema, types: dict[str, pa.DataType], id_field: str,
                 max_record: int, fix_row: Callable[[dict], dict] | None) -> Iterator[pa.Table]:
    """Fast path for the chunk; if pyarrow refuses it, split it in two at a line boundary and
    retry each half, so one bad line costs a few extra C++ parses, not a Python pass over 8 MiB."""
    table = _fast_jsonl(chunk, first_line, schema, max_record)
    if table is not None:
        yield table
        return
    n_lines = chunk.count(b"\n")
    if n_lines <= _BISECT_MIN_LINES:
        yield lines_to_table(chunk, first_line, types, id_field, max_record, fix_row)
        return
    mid = chunk.find(b"\n", len(chunk) // 2)
    if mid < 0 or mid == len(chunk) - 1:
        mid = chunk.rfind(b"\n", 0, len(chunk) - 1)
    left, right = chunk[: mid + 1], chunk[mid + 1:]
    if not left or not right:
        yield lines_to_table(chunk, first_line, types, id_field, max_record, fix_row)
        return
    yield from _parse_chunk(left, first_line, schema, types, id_field, max_record, fix_row)
    yield from _parse_chunk(right, first_line + left.count(b"\n"), schema, types, id_field, max_record, fix_row)


def _fast_jsonl(chunk: bytes, first_line: int, schema: pa.Schema, max_record: int) -> pa.Table | None:
    """pyarrow's reader over a chunk, or None when the chunk needs the per-line path."""
    starts, ends, has = split_lines(chunk, exact=False)
    if not has.any():
        return None
    longest = int((ends - starts).max())
    if longest > max_record:
        return None
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        table = pj.read_json(
            io.BytesIO(chunk),
            read_options=pj.ReadOptions(block_size=max(1 << 20, longest + 2), use_threads=True),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != int(has.sum()):  # lines of only whitespace: pyarrow skips them too
        has = split_lines(chunk, exact=True)[2]
        if table.num_rows != int(has.sum()):
            return None
    lines = np.flatnonzero(has) + first_line
    n = table.num_rows
    return table.append_column("_line", pa.array(lines, pa.int64())).append_column("_error", pa.nulls(n, pa.string()))


# ---------------------------------------------------------------------------------- other containers
def read_json_array(p: Path, max_record: int) -> list[Any]:
    """A file holding one JSON array of records (Alpaca/LLaMA-Factory style), parsed whole."""
    with open_bytes(p) as fh:
        data = fh.read()
    if data.startswith(BOM):
        data = data[len(BOM):]
    if not data.strip():
        raise DataError(f"{p}: the file is empty")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            json.loads(data.decode("utf-8", errors="replace"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg}, col {exc.colno}); a JSON array file "
                            f"must parse as a whole, use JSON Lines to reject bad records one by one") from None
        raise DataError(f"{p}: not valid UTF-8 JSON") from None
    if isinstance(obj, dict):
        for key in ("data", "records", "examples", "rows"):
            if isinstance(obj.get(key), list):
                return obj[key]
        return [obj]  # a single record
    if not isinstance(obj, list):
        raise DataError(f"{p}: expected a JSON array of records, got {_kind(obj)}")
    return obj


def read_csv(p: Path, delimiter: str, batch_size: int) -> Iterator[pa.Table]:
    """CSV/TSV with a header row; every column is read as text (no guessing of numbers).

    pyarrow streams the file; at the first row with the wrong number of fields the rest of the
    file is read with Python's csv module, which knows line numbers, so each bad row becomes a
    `malformed_csv` reject with its line and the good rows around it are kept.
    """
    import csv as pycsv

    import pyarrow.csv as pcsv

    head = head_bytes(p).decode("utf-8", errors="replace")
    if not head.strip():
        raise DataError(f"{p}: the file is empty")
    header = next(pycsv.reader(io.StringIO(head.splitlines()[0]), delimiter=delimiter))
    kind = "TSV" if delimiter == "\t" else "CSV"
    done = 0
    try:
        reader = pcsv.open_csv(
            open_bytes(p),
            read_options=pcsv.ReadOptions(block_size=4 << 20),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=lambda row: "error"),
            convert_options=pcsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        for rb in reader:
            t = pa.Table.from_batches([rb])
            t = t.append_column("_line", pa.array(np.arange(done + 2, done + 2 + t.num_rows), pa.int64()))
            done += t.num_rows
            yield t
        return
    except pa.ArrowInvalid as exc:
        if "Expected" not in str(exc) and "columns" not in str(exc):
            raise DataError(f"{p}: not a valid {kind} file ({str(exc).splitlines()[0]})") from None
    yield from _read_csv_python(p, delimiter, header, skip=done, batch_size=batch_size, kind=kind)


def _read_csv_python(p: Path, delimiter: str, header: list[str], skip: int, batch_size: int,
                     kind: str) -> Iterator[pa.Table]:
    import csv as pycsv

    with open_bytes(p) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        reader = pycsv.reader(text, delimiter=delimiter)
        next(reader, None)
        rows: list[Any] = []
        errors: list[str | None] = []
        lines: list[int] = []
        record = 0
        start = reader.line_num + 1
        for fields in reader:
            record += 1
            if record > skip:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    pass  # blank line: not a record
                elif len(fields) != len(header):
                    rows.append(None)
                    errors.append(f"malformed_csv: expected {len(header)} fields, got {len(fields)}")
                    lines.append(start)
                else:
                    rows.append(dict(zip(header, fields)))
                    errors.append(None)
                    lines.append(start)
            start = reader.line_num + 1
            if len(rows) >= batch_size:
                yield _csv_table(rows, errors, lines, header)
                rows, errors, lines = [], [], []
        if rows:
            yield _csv_table(rows, errors, lines, header)


def _csv_table(rows: list[Any], errors: list[str | None], lines: list[int], header: list[str]) -> pa.Table:
    cols = {h: pa.array([r[h] if r else None for r in rows], pa.string()) for h in header}
    cols["_line"] = pa.array(lines, pa.int64())
    cols["_error"] = pa.array(errors, pa.string())
    return pa.table(cols)


def read_parquet(p: Path, batch_size: int) -> Iterator[pa.Table]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(str(p))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{p}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    row = 1
    for rb in pf.iter_batches(batch_size=batch_size):
        t = pa.Table.from_batches([rb])
        yield t.append_column("_line", pa.array(np.arange(row, row + t.num_rows), pa.int64()))
        row += t.num_rows


def read_arrow(p: Path, batch_size: int) -> Iterator[pa.Table]:
    """Arrow IPC, file or stream flavour (HF `datasets` cache files are streams)."""
    src = pa.memory_map(str(p))
    try:
        reader: Any = pa.ipc.open_file(src)
        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
    except pa.ArrowInvalid:
        try:
            src = pa.memory_map(str(p))
            batches = iter(pa.ipc.open_stream(src))
        except pa.ArrowInvalid as exc:
            raise DataError(f"{p}: not a readable Arrow IPC file ({str(exc).splitlines()[0]})") from None
    row = 1
    for rb in batches:
        t = pa.Table.from_batches([rb])
        for start in range(0, t.num_rows, batch_size):
            piece = t.slice(start, batch_size)
            yield piece.append_column("_line", pa.array(np.arange(row, row + piece.num_rows), pa.int64()))
            row += piece.num_rows


def file_is_empty(p: Path) -> bool:
    if p.is_dir():
        return False
    if os.path.getsize(p) == 0:
        return True
    return not head_bytes(p, 1 << 12).strip() and not _has_content_beyond(p)


def _has_content_beyond(p: Path) -> bool:
    with open_bytes(p) as fh:
        while True:
            data = fh.read(1 << 20)
            if not data:
                return False
            if data.strip():
                return True

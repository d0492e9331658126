"""Moving Arrow tables between processes.

Pickling a sliced `pa.Table` serializes the whole parent buffers (an 8k-row slice of a 1M-row
block ships all 1M rows); the Arrow IPC stream format writes only the slice. Every process pool
in the project sends tables through these two functions.
"""
from __future__ import annotations

import pyarrow as pa


def to_ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(buf: pa.Buffer) -> pa.Table:
    return pa.ipc.open_stream(buf).read_all()

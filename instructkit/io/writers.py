"""Parquet writers for kept rows (sharded, per split) and for rejects.

Both writers count what they actually wrote: the run's accounting check compares these counts
with what the readers read, so a row lost anywhere between reading and writing is caught.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from instructkit.errors import InvariantError
from instructkit.schema import PROVENANCE, record_schema

REJECT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("_file", pa.string()),
        pa.field("_line", pa.int64()),
        pa.field("messages", record_schema().field("messages").type),
        pa.field("meta", pa.string()),
    ]
)


class ShardedParquetWriter:
    """Writes batches into `dir/prefix-NNNNN.parquet`, starting a new shard every `shard_rows`."""

    def __init__(self, directory: Path, prefix: str, shard_rows: int = 100_000, schema: pa.Schema | None = None):
        self.directory = Path(directory)
        self.prefix = prefix
        self.shard_rows = shard_rows
        self.schema = schema
        self.rows = 0
        self.files: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._in_shard = 0

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.prefix}-{len(self.files):05d}.parquet"
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.files.append(path)
        self._in_shard = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.schema is None:
            self.schema = table.schema
        elif table.schema != self.schema:
            try:
                table = table.select(self.schema.names).cast(self.schema)
            except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise InvariantError(
                    f"{self.prefix}: batch columns {table.schema.names} do not match the first batch's "
                    f"{self.schema.names} ({exc}); an operator produced inconsistent column types"
                ) from None
        start = 0
        while start < table.num_rows:
            if self._writer is None or self._in_shard >= self.shard_rows:
                self.close()
                self._open()
            take = min(self.shard_rows - self._in_shard, table.num_rows - start)
            self._writer.write_table(table.slice(start, take))
            self._in_shard += take
            self.rows += take
            start += take

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RejectWriter(ShardedParquetWriter):
    """Every dropped row with the stage and reason that dropped it, and where it came from."""

    def __init__(self, directory: Path, prefix: str = "rejects", shard_rows: int = 200_000):
        super().__init__(directory, prefix, shard_rows, schema=REJECT_SCHEMA)
        self.by_stage: dict[str, dict[str, int]] = {}

    def add(self, table: pa.Table, stage: str, reason: pa.Array, detail: pa.Array | None = None) -> None:
        """Write the rows of `table` (already filtered to the rejected ones) with their reasons."""
        n = table.num_rows
        if n == 0:
            return

        def col(name: str, typ: pa.DataType) -> pa.Array:
            if name in table.column_names:
                return table.column(name).cast(typ)
            return pa.nulls(n, typ)

        out = pa.table(
            {
                "id": col("id", pa.string()),
                "source": col("source", pa.string()),
                "stage": pa.array([stage] * n, pa.string()),
                "reason": reason.cast(pa.string()),
                "detail": detail.cast(pa.string()) if detail is not None else pa.nulls(n, pa.string()),
                "_file": col("_file", pa.string()),
                "_line": col("_line", pa.int64()),
                "messages": col("messages", REJECT_SCHEMA.field("messages").type),
                "meta": col("meta", pa.string()),
            },
            schema=REJECT_SCHEMA,
        )
        self.write(out)
        counts = self.by_stage.setdefault(stage, {})
        for item in pc.value_counts(out.column("reason")).to_pylist():
            key = item["values"] if item["values"] is not None else "unknown"
            counts[key] = counts.get(key, 0) + int(item["counts"])


def drop_provenance(table: pa.Table) -> pa.Table:
    """Kept rows are written without the engine's internal provenance columns."""
    return table.drop_columns([c for c in PROVENANCE if c in table.column_names])


def count_parquet_rows(files: list[Path]) -> int:
    """Row count from Parquet footers: the accounting check re-reads what is on disk."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)

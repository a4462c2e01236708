"""Content addresses for data: the same logical table always gets the same version id.

The id hashes the Arrow IPC messages of the table in fixed-size batches, with no
schema metadata, so it depends on column names, types and values, in order, and not on
how a file was chunked into row groups or which pandas wrote it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa

BATCH_ROWS = 65536


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The canonical Arrow table of a frame: no index, no pandas metadata, one chunk per column."""
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None).combine_chunks()


def content_version(table: pa.Table) -> str:
    digest = hashlib.sha256(table.schema.serialize())
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        digest.update(batch.serialize())  # one IPC message per batch, streamed: no whole-table copy
    return "sha256:" + digest.hexdigest()


class StreamingVersion:
    """``content_version`` of a table that arrives in batches of any size.

    The id hashes exact ``BATCH_ROWS``-row slices of one combined table, so arriving batches
    are re-cut at those boundaries. Arrow's IPC writer takes a sliced string column's bytes
    rounded up to 64 from the table's buffer, so a slice's message holds up to 63 bytes of
    the following rows' text: a slice is hashed only once the rows after it hold ``PADDING``
    bytes of every string column (or the table has ended). What is not yet hashed stays
    pending: usually under two batches, more only while a string column is almost all empty."""

    def __init__(self, schema: pa.Schema) -> None:
        self._digest = hashlib.sha256(schema.serialize())
        self._schema = schema
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0

    def update(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._rows += batch.num_rows
        if self._rows >= 2 * BATCH_ROWS:
            self._hash(final=False)

    def _hash(self, final: bool) -> None:
        table = pa.Table.from_batches(self._pending, self._schema).combine_chunks()
        start = 0
        while table.num_rows - start >= BATCH_ROWS and (final or _followed(table, start + BATCH_ROWS)):
            self._digest.update(_batch(table.slice(start, BATCH_ROWS)).serialize())
            start += BATCH_ROWS
        if final and start < table.num_rows:
            self._digest.update(_batch(table.slice(start)).serialize())
            start = table.num_rows
        rest = table.slice(start)
        self._pending, self._rows = rest.to_batches(), rest.num_rows

    def hexdigest(self) -> str:
        self._hash(final=True)
        return "sha256:" + self._digest.hexdigest()


PADDING = 64  # arrow::ipc's PaddedLength: kArrowAlignment
VARIABLE = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def _batch(table: pa.Table) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([column.chunk(0) for column in table.columns], schema=table.schema)


def _followed(table: pa.Table, end: int) -> bool:
    """Whether every string column has ``PADDING`` bytes of text after row ``end`` (a combined table: one chunk)."""
    for column in table.columns:
        if any(test(column.type) for test in VARIABLE):
            array = column.chunk(0)
            large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
            offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if large else np.int32)
            if offsets[array.offset + len(array)] - offsets[array.offset + end] < PADDING:
                return False
    return True

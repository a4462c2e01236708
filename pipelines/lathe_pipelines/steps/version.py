"""Content addresses for data: the same logical table always gets the same version id.

The id hashes an Arrow IPC stream of the table written in fixed-size batches with no
schema metadata, so it depends on column names, types and values, in order, and not on
how a file was chunked into row groups or which pandas wrote it.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa

BATCH_ROWS = 65536


class _HashSink:
    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The canonical Arrow table of a frame: no index, no pandas metadata, one chunk per column."""
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None).combine_chunks()


def content_version(table: pa.Table) -> str:
    sink = pa.PythonFile(_HashSink(), mode="w")  # type: ignore[arg-type]
    hasher: _HashSink = sink.handle  # type: ignore[attr-defined]
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            writer.write_batch(batch)
    return "sha256:" + hasher.digest.hexdigest()

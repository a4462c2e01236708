"""Content addresses for data: the same logical table always gets the same version id.

The id hashes the Arrow IPC messages of the table in fixed-size batches, with no
schema metadata, so it depends on column names, types and values, in order, and not on
how a file was chunked into row groups or which pandas wrote it.
"""

from __future__ import annotations

import hashlib

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

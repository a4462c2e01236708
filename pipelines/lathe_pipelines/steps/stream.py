"""Read a source in chunks, typed as the in-memory read types the whole of it, into Parquet and a version id.

Why the care: the version id hashes the Arrow schema before any row, so every column's type
must be final before the first batch, yet pandas infers a CSV column's type from all of
it (an int column with one empty cell anywhere is float64; a numeric column with one word
is text). The first chunk's types are provisional. A later chunk that needs a wider type
(``_Retype``) sends the read back to the start: one scan learns every column's type as the
whole-file read would (``resolve``), and a second pass reads with those types forced
(``dtype=`` for CSV, a cast for Parquet). What this cannot reproduce exactly (a declared
``category`` column, whose dictionary depends on all rows; types pandas gives in other
ways) raises ``NotStreamable`` and the caller reads the source in memory, as before.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import schema as schemas
from .errors import EmptyData, MalformedData
from .version import BATCH_ROWS, StreamingVersion

CHUNK_ROWS = 2 * BATCH_ROWS  # about 50 MB per copy of a chunk at 50 float columns
EXACT_FLOAT = 2**53  # integers up to this convert to float64 exactly, as pandas' float parse gives them
NUMERIC = {"int", "float", "null"}
BOOLEAN = {"bool", "boolnull", "null"}
CSV_DTYPES = {"int": "int64", "float": "float64", "null": "float64", "string": "str"}
INFERRED = {"int": "int", "float": "float", "null": "float", "bool": "bool", "boolnull": "string", "string": "string"}


class NotStreamable(Exception):
    """The source's types cannot be reproduced chunk by chunk; read it in memory."""


class _Retype(Exception):
    """A chunk needs a wider type than the provisional one."""


def kind(series: pd.Series) -> str:
    """A pandas-read column's type in the terms that decide the whole file's type."""
    dtype = series.dtype
    if dtype == np.int64:
        return "int"
    if dtype == np.float64:
        return "null" if series.isna().all() else "float"
    if dtype == np.bool_:
        return "bool"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if dtype == np.object_ and pd.api.types.infer_dtype(series, skipna=True) == "boolean":
        return "boolnull"  # True/False with empty cells: pandas keeps objects, Arrow makes bool
    return f"other:{dtype}"


def resolve(kinds: set[str], fmt: str) -> str:
    """The type pandas gives a column whose chunks have these types."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= NUMERIC:
        return "int" if kinds == {"int"} else "float"
    if kinds <= BOOLEAN:
        return "boolnull"
    if fmt == "csv" and kinds <= NUMERIC | BOOLEAN | {"string"}:
        return "string"  # the file's text, read again as text
    raise NotStreamable(f"column types {sorted(kinds)} do not combine chunk by chunk")


def _has_content(data: bytes | Path) -> bool:
    if isinstance(data, bytes):
        return bool(data.strip())
    with data.open("rb") as source:
        while block := source.read(1 << 20):
            if block.strip():
                return True
    return False


def _file_chunks(where: str, data: bytes | Path, fmt: str, forced: dict[str, str]) -> Iterator[pd.DataFrame]:
    if not _has_content(data):
        raise EmptyData(f"{where} is empty")
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        if fmt == "parquet":
            for batch in pq.ParquetFile(source).iter_batches(batch_size=CHUNK_ROWS):
                yield pa.Table.from_batches([batch]).to_pandas()
            return
        dtypes = {name: CSV_DTYPES[k] for name, k in forced.items() if k in CSV_DTYPES}
        with pd.read_csv(source, chunksize=CHUNK_ROWS, low_memory=False, dtype=dtypes or None) as reader:
            yield from reader
    except (pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowInvalid, UnicodeDecodeError, ValueError) as error:
        raise MalformedData(f"{where} is not valid {fmt}: {str(error).splitlines()[0][:300]}") from error


def chunks(files: list[tuple[str, bytes | Path]], fmt: str, forced: dict[str, str]) -> Iterator[pd.DataFrame]:
    """The files' rows in order, in chunks indexed by row number across all files."""
    columns: list[str] | None = None
    offset = 0
    for where, data in files:
        first = True
        for chunk in _file_chunks(where, data, fmt, forced):
            if first and columns is not None and list(chunk.columns) != columns:
                raise MalformedData(f"files have different columns: {where} has {list(chunk.columns)}, not {columns}")
            columns, first = list(chunk.columns), False
            if chunk.empty:
                continue
            chunk.index = pd.RangeIndex(offset, offset + len(chunk))
            offset += len(chunk)
            yield chunk


def _widen(chunk: pd.DataFrame, kinds: dict[str, str], exact_only: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    """The chunk with the whole file's pandas types (ints in a float column become floats), and its own kinds."""
    own = {str(name): kind(series) for name, series in chunk.items()}
    for name, have in own.items():
        want = kinds[name]
        if have == want or (have == "null" and want != "int") or (want in BOOLEAN - {"null"} and have in BOOLEAN):
            continue  # all-empty chunks and bool-with-gaps take the column's Arrow type below
        if want in ("float", "null") and have == "int":
            if exact_only and np.abs(chunk[name].to_numpy()).max() > EXACT_FLOAT:
                raise _Retype(name)
            chunk[name] = chunk[name].astype("float64")
            continue
        raise _Retype(name)
    return chunk, own


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The chunk's table in the stream's schema; only all-null columns may change type (nothing is lost)."""
    if table.schema == schema:
        return table
    arrays = []
    for column, target in zip(table.columns, schema):
        if column.type == target.type:
            arrays.append(column)
        elif column.null_count == len(column):
            arrays.append(pa.nulls(len(column), target.type))
        else:
            raise NotStreamable(f"column {target.name} is {column.type} in one chunk and {target.type} in another")
    return pa.Table.from_arrays(arrays, schema=schema)


def _arrow_type(name: str, first: pa.DataType, kinds: dict[str, str]) -> pa.DataType:
    return {"null": pa.float64(), "boolnull": pa.bool_(), "string": pa.large_string()}.get(kinds[name], first)


@dataclass
class Streamed:
    """What one pass produced: the id, the Parquet file, and what the manifest and profile need."""

    version: str
    rows: int
    columns: list[str]
    schema: list[dict[str, Any]]
    nulls: set[str] = field(default_factory=set)


def _strings(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


class Sink:
    """Batches into the version hash, Parquet row groups (zstd; dictionaries only for strings, as before) and,
    for data small enough to validate whole, an Arrow IPC stream file for the validator.

    Writing Parquet and hashing (with the IPC copy) run in two background threads (Arrow and
    hashlib release the GIL) while the caller parses the next chunk; one chunk waits at most.
    Each thread takes the chunks in order: the next chunk is handed over when both are done."""

    def __init__(self, schema: pa.Schema, path: Path, ipc: Path | None = None) -> None:
        self.schema, self.rows, self.nulls = schema, 0, set[str]()
        self.version = StreamingVersion(schema)
        strings = _strings(schema)
        self.writer = pq.ParquetWriter(str(path), schema, compression="zstd", use_dictionary=strings or False)
        self.ipc = pa.ipc.new_stream(str(ipc), schema) if ipc else None
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lathe-sink")
        self._pending: list[Future[None]] = []

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        self.nulls.update(name for name, column in zip(table.column_names, table.columns) if column.null_count)
        self._wait()
        self._pending = [self._pool.submit(self.writer.write_table, table), self._pool.submit(self._hash, table)]

    def _hash(self, table: pa.Table) -> None:
        if self.ipc:
            self.ipc.write_table(table)
        for batch in table.to_batches():
            self.version.update(batch)

    def _wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self._pool.shutdown()
            self.writer.close()
            if self.ipc:
                self.ipc.close()


def _pass(
    files: list[tuple[str, bytes | Path]],
    fmt: str,
    declared: list[dict[str, Any]] | None,
    forced: dict[str, str],
    path: Path,
    ipc: Path | None,
) -> Streamed:
    kinds, seen = dict(forced), dict[str, set[str]]()
    sink: Sink | None = None
    effective: list[dict[str, Any]] = []
    try:
        for chunk in chunks(files, fmt, forced):
            if sink is None and not forced:
                kinds = {str(name): kind(series) for name, series in chunk.items()}
            chunk, own = _widen(chunk, kinds, exact_only=not forced)
            for name, k in own.items():
                seen.setdefault(name, set()).add(k)
            if declared:
                chunk, effective = schemas.apply(chunk, declared)
            table = pa.Table.from_pandas(chunk, preserve_index=False).replace_schema_metadata(None)
            if sink is None:
                fields = [
                    pa.field(f.name, _arrow_type(f.name, f.type, kinds) if not declared else f.type)
                    for f in table.schema
                ]
                sink = Sink(pa.schema(fields), path, ipc)
            sink.write(_conform(table, sink.schema))
    finally:
        if sink is not None:
            sink.close()
    if sink is None or sink.rows == 0:
        raise EmptyData("the source has a header but no rows")
    if not declared:
        effective = [
            {"name": name, "type": _inferred(seen[name], kinds[name]), "nullable": name in sink.nulls}
            for name in sink.schema.names
        ]
    return Streamed(sink.version.hexdigest(), sink.rows, sink.schema.names, effective, sink.nulls)


def _inferred(seen: set[str], resolved: str) -> str:
    """``schema.infer``'s word for the whole column: bool only when no chunk had a gap (gaps make pandas objects)."""
    if resolved in BOOLEAN and resolved != "null":
        return "bool" if seen == {"bool"} else "string"
    if resolved.startswith("other:"):
        return "datetime" if "datetime" in resolved else "category" if "category" in resolved else "string"
    return INFERRED[resolved]


def _scan(files: list[tuple[str, bytes | Path]], fmt: str) -> dict[str, str]:
    """Every column's whole-file type, from one read of all chunks."""
    seen: dict[str, set[str]] = {}
    for chunk in chunks(files, fmt, {}):
        for name, series in chunk.items():
            seen.setdefault(str(name), set()).add(kind(series))
    return {name: resolve(kinds, fmt) for name, kinds in seen.items()}


def stream(
    files: list[tuple[str, bytes | Path]],
    fmt: str,
    declared: list[dict[str, Any]] | None,
    path: Path,
    uri: str,
    ipc: Path | None = None,
) -> Streamed:
    """Write the source to ``path`` as Parquet (and to ``ipc`` as an Arrow stream) and return its id.

    NotStreamable when only an in-memory read is exact."""
    if declared and any(c.get("type") in ("category", "datetime") for c in declared):
        raise NotStreamable("declared category or datetime columns")  # their Arrow type depends on all rows
    try:
        try:
            return _pass(files, fmt, declared, {}, path, ipc)
        except _Retype:
            forced = _scan(files, fmt)
        try:
            return _pass(files, fmt, declared, forced, path, ipc)
        except _Retype as error:
            raise NotStreamable(f"column {error} changed type with its type forced") from error
    except EmptyData as error:
        if "header" in str(error):
            raise EmptyData(f"{uri} has a header but no rows") from error
        raise

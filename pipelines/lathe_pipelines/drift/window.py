"""The current data of a drift check: a deployment's request logs over a window, or a Dataset version.

Logs are the Parquet files the model server writes (``lathe_core.layout.log_partition``):
only served predictions count (not shadow ones), their feature lists are named with the
model card's feature names, and ground truth is joined to the prediction the server
itself logged by the answer's signature tag and row (``truths``), so live accuracy never
trusts what a client echoes: truth the server did not bind to one of its answers is never
used, and an answer's first truth wins over any later one.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.store import ObjectStore


@dataclass
class Window:
    """Columns by name, the served predictions, and the labelled pairs among them."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    # Text as objects, not fixed-width: one long value must not widen every row.
    predictions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    truth: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))  # for labelled rows only
    labelled_predictions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    samples: int = 0
    unnamed: int = 0  # feature positions the model card does not name

    @property
    def labelled(self) -> int:
        return int(self.truth.size)

    @property
    def accuracy(self) -> float | None:
        return float(np.mean(self.truth == self.labelled_predictions)) if self.labelled else None

    @property
    def mean_absolute_error(self) -> float | None:
        """A regressor's: truth and answers are numbers as text; pairs where either is not a number are left out."""
        truth = pd.to_numeric(pd.Series(self.truth), errors="coerce").to_numpy(dtype="float64")
        answered = pd.to_numeric(pd.Series(self.labelled_predictions), errors="coerce").to_numpy(dtype="float64")
        errors = np.abs(truth - answered)
        errors = errors[np.isfinite(errors)]
        return float(errors.mean()) if errors.size else None


def _hours(start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(minute=0, second=0, microsecond=0)
    return [first + timedelta(hours=h) for h in range(int((end - first).total_seconds() // 3600) + 1)]


def read_logs(store: ObjectStore, namespace: str, deployment: str, start: datetime, end: datetime) -> pa.Table | None:
    """Every log row in [start, end), or None when there is none."""
    tables = []
    for hour in _hours(start, end):
        for key in store.list(layout.log_partition(namespace, deployment, hour)):
            if key.endswith(".parquet"):
                tables.append(pq.read_table(io.BytesIO(store.get(key)), use_threads=False))
    if not tables:
        return None
    table = pa.concat_tables([_current(t) for t in tables], promote_options="default")
    times = table.column("time")
    keep = pc.and_(pc.greater_equal(times, pa.scalar(start, times.type)), pc.less(times, pa.scalar(end, times.type)))
    return table.filter(keep)


TEXT = pa.dictionary(pa.int32(), pa.string())
IDS = ("request_id", "answer", "source")


def _current(table: pa.Table) -> pa.Table:
    """A log file in today's shape: ids dictionary-encoded, and an older file's missing tag and source null
    (so its truth, bound to no tag, is never used)."""
    for name in IDS:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, TEXT))
        elif table.schema.field(name).type != TEXT:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.dictionary_encode(table.column(name).cast(pa.string())))
    return table


def served_and_truth(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The served (not shadow) predictions, and the feedback rows bound to an answer (a tag the server wrote)."""
    table = _current(table)
    kind, shadow = table.column("kind"), pc.fill_null(table.column("shadow"), False)
    served = table.filter(pc.and_(pc.equal(kind, "prediction"), pc.invert(shadow)))
    feedback = table.filter(pc.and_(pc.equal(kind, "feedback"), pc.is_valid(table.column("answer"))))
    return served, feedback


def truths(served: pa.Table, feedback: pa.Table) -> list[tuple[int, str, str]]:
    """(served row, its truth, the feedback's source) for each served row whose answer got truth: joined by the
    answer's tag and the row within it; the first truth of an answer's row wins, later ones are ignored."""
    rows = {key: i for i, key in enumerate(_ranked(served.column("answer").to_pylist())) if key[0] is not None}
    sources = feedback.column("source").to_pylist()
    found, used = [], set()
    keys = _ranked(feedback.column("answer").to_pylist())
    for key, value, source in zip(keys, feedback.column("truth").to_pylist(), sources, strict=True):
        row = rows.get(key)
        if row is not None and value is not None and row not in used:
            used.add(row)
            found.append((row, str(value), source or ""))
    return found


def _ranked(request_ids: list[str]) -> list[tuple[str, int]]:
    """(request id, row within that request) for rows in the order the server logged them."""
    seen: dict[str, int] = {}
    keys = []
    for rid in request_ids:
        keys.append((rid, seen.get(rid, 0)))
        seen[rid] = seen.get(rid, 0) + 1
    return keys


def from_logs(table: pa.Table | None, features: list[str], categorical: list[str] | None = None) -> Window:
    """Served rows as columns by name: ``features`` from the logged numbers, ``categorical`` from the logged text."""
    if table is None or table.num_rows == 0:
        return Window()
    served, feedback = served_and_truth(table)
    matrix = _matrix(served.column("features"))
    width = matrix.shape[1]
    columns: dict[str, np.ndarray] = {name: matrix[:, i] for i, name in enumerate(features[:width])}
    if categorical and "categories" in served.column_names:
        columns.update(_texts(served.column("categories"), categorical))
    predictions = np.asarray(served.column("prediction").to_pylist(), dtype=object)
    pairs = truths(served, feedback)
    truth = np.asarray([t for _, t, _ in pairs], dtype=object)
    labelled = np.asarray([predictions[row] for row, _, _ in pairs], dtype=object)
    return Window(columns, predictions, truth, labelled, served.num_rows, max(0, width - len(features)))


def _matrix(lists: pa.ChunkedArray) -> np.ndarray:
    """Rows of feature lists as a float matrix; ragged rows (a changed model) are padded with NaN."""
    lists = lists.combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    if not lengths.size:  # no served rows in the window (feedback alone)
        return np.empty((0, 0))
    width = int(lengths.max())
    values = np.asarray(pc.list_flatten(lists).to_numpy(zero_copy_only=False), dtype="float64")
    if (lengths == width).all():
        return values.reshape(len(lengths), width)
    matrix = np.full((len(lengths), width), np.nan)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    matrix[rows, np.arange(values.size) - np.repeat(starts, lengths)] = values
    return matrix


def _texts(lists: pa.ChunkedArray, names: list[str]) -> dict[str, np.ndarray]:
    """Logged categorical values by column; "" (no value) and rows logged without them are None."""
    rows = lists.to_pylist()
    return {
        name: np.asarray([(row[j] or None) if row and j < len(row) else None for row in rows], dtype=object)
        for j, name in enumerate(names)
    }


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    """Float64, NaN where null. A float64 chunk without nulls is a view on the buffer Arrow read, not a copy."""
    chunks = [chunk.to_numpy(zero_copy_only=False) for chunk in values.chunks]
    if len(chunks) == 1:
        return np.asarray(chunks[0], dtype="float64")
    return np.concatenate(chunks, dtype="float64") if chunks else np.empty(0)


def read_columns(source: str | os.PathLike[str] | pa.NativeFile) -> tuple[dict[str, np.ndarray], int]:
    """Every column of a Parquet file by name, and its row count.

    Read one column at a time, so Arrow never holds the whole table beside the arrays made
    from it; its allocator keeps freed memory, so what is unused goes back at the end."""
    parquet = pq.ParquetFile(source)
    columns = {}
    for name in parquet.schema_arrow.names:
        values = parquet.read(columns=[name], use_threads=False).column(0)
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            columns[name] = _numbers(values)
        else:
            columns[name] = np.asarray(values.to_pylist(), dtype=object)
        del values
    pa.default_memory_pool().release_unused()
    return columns, parquet.metadata.num_rows


def from_dataset(store: ObjectStore, namespace: str, name: str, version: str) -> Window:
    """A Dataset version as the current data (drift between data versions); every column, by name."""
    columns, rows = read_columns(pa.BufferReader(DatasetVersions(store, namespace, name).data(version)))
    return Window(columns, samples=rows)

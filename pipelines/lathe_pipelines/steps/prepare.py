"""Step: fetch a Dataset version's data.parquet from the store and write the seeded split.

The version is read in record batches, never whole: the split is planned from the target
column alone (``split.assign``), categories are counted over the training rows batch by batch,
and each batch's encoded rows go straight to their places in the three parts, which are
``.npy`` files on disk until they are packed into the split file (``splitfile``). Memory is
a batch and a few integers per row, whatever the version's size; the arrays are the ones
``split.split`` makes from the whole frame.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lathe_core.datasets import DatasetVersions
from lathe_core.stores import open_configured_store

from . import encoding as encodings
from . import splitfile
from .encoding import Encoding, save
from .split import assign

BATCH_ROWS = 65_536
PARTS = ("train", "val", "test")


def run(
    namespace: str, dataset: str, version: str, target: str, seed: int, out_path: str, task: str = "classification"
) -> str:
    versions = DatasetVersions(open_configured_store(), namespace, dataset)
    with tempfile.TemporaryDirectory(prefix=".lathe-prepare-", dir=Path(out_path).parent) as work:
        source = Path(work) / "data.parquet"
        versions.data_file(version, str(source))
        return prepare(source, target, seed, Path(out_path), task)


def _batches(source: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    # No Arrow thread pool in this short-lived step: its teardown at interpreter exit has aborted
    # the process ("terminate called without an active exception") after the work was done.
    # Without pre-buffering: Arrow would read a whole row group's column chunks at once (a file written
    # elsewhere may have row groups of millions of rows); Arrow's pool hands each batch's memory back.
    file = pq.ParquetFile(source, pre_buffer=False, buffer_size=1 << 20)
    for batch in file.iter_batches(BATCH_ROWS, columns=columns, use_threads=False):
        frame = batch.to_pandas(use_threads=False)
        del batch
        pa.default_memory_pool().release_unused()
        yield frame


def prepare(source: Path, target: str, seed: int, out_path: Path, task: str = "classification") -> str:
    """The split file of a Parquet file at ``out_path``; the step's summary (JSON)."""
    file = pq.ParquetFile(source)
    names, rows = file.schema_arrow.names, file.metadata.num_rows
    if target not in names:
        raise ValueError(f"target column {target!r} is not in the data")
    labels = pq.read_table(source, columns=[target], use_threads=False).to_pandas()[target]
    y, classes, parts = assign(labels, seed, task=task)
    features, categorical = encodings.kinds(next(_batches(source, names), labels.to_frame()), target)
    fitted = _categories(source, categorical, parts["train"], rows)
    encoding = Encoding(features, fitted.categorical, fitted.categories)
    if not encoding.names():
        raise ValueError(f"no numeric or text column besides the target {target!r} to train on")
    with tempfile.TemporaryDirectory(prefix=".lathe-parts-", dir=out_path.parent) as work:
        _fill(source, encoding, parts, rows, Path(work))
        arrays: dict[str, np.ndarray | Path] = {}
        for part in PARTS:
            arrays[f"x_{part}"], arrays[f"y_{part}"] = Path(work) / f"x_{part}.npy", y[parts[part]]
        splitfile.write(out_path, {**arrays, "encoding": save(encoding)})
    summary = {"features": features, **encoding.card(), "classes": classes, "target": target, "task": task}
    return json.dumps({**summary, "rows": rows, **{part: len(parts[part]) for part in PARTS}})


def _categories(source: Path, categorical: list[str], train: np.ndarray, rows: int) -> Encoding:
    """The training rows' categories of each text column, counted batch by batch."""
    if not categorical:
        return Encoding([])
    training = np.zeros(rows, dtype=bool)
    training[train] = True
    total: dict[str, pd.Series] = {}
    offset = 0
    for batch in _batches(source, categorical):
        counted = encodings.counts(batch[training[offset : offset + len(batch)]], categorical)
        total = encodings.add(total, counted) if total else counted
        offset += len(batch)
    return encodings.ranked(total)


def _fill(source: Path, encoding: Encoding, parts: dict[str, np.ndarray], rows: int, work: Path) -> None:
    """Each part's encoded rows, in the part's order, in ``work``/x_<part>.npy."""
    part_of = np.empty(rows, dtype=np.int8)
    place = np.empty(rows, dtype=np.int64)
    for index, part in enumerate(PARTS):
        part_of[parts[part]] = index
        place[parts[part]] = np.arange(len(parts[part]))
    width = len(encoding.names())
    x = [
        np.lib.format.open_memmap(work / f"x_{part}.npy", mode="w+", dtype="float32", shape=(len(parts[part]), width))
        for part in PARTS
    ]
    offset = 0
    for batch in _batches(source, [*encoding.features, *encoding.categorical]):
        encoded = encodings.encode(batch, encoding)
        span = slice(offset, offset + len(batch))
        for index in range(len(PARTS)):
            mine = part_of[span] == index
            x[index][place[span][mine]] = encoded[mine]
        offset += len(batch)
    for array in x:
        array.flush()
    del x

"""The reference profile: what a DriftMonitor compares live traffic with, computed once at ingest.

Format 2 (``FORMAT``), for each numeric column: count, missing, non-finite values, mean,
standard deviation, min and max, its quantiles at the profile's ``quantileLevels`` (every
1/1000, and closer together towards both tails, where heavy-tailed columns need them),
fine enough that KS, Wasserstein, PSI and Jensen-Shannon against the profile agree with
the same statistics against the full data (docs/drift.md), and a seeded sample. For each
categorical column: the count of every category (the most frequent ``TOP_CATEGORIES``,
the rest together). The target: class counts. A profile of another format is refused by
the drift code with a clear reason, never misread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT = 2
TAIL = 0.001 * 0.5 ** np.arange(1, 21)  # 5e-4 down to 1e-9: the extremes of up to a billion rows
LEVELS = np.unique(np.concatenate((np.linspace(0.0, 1.0, 1001), TAIL, 1.0 - TAIL)))
SAMPLE = 10_000
TOP_CATEGORIES = 1000
SEED = 0
OTHER = "__other__"
MEMORY = 256 * 2**20  # for the columns profiled at once (one at a time from 10M rows)
COPIES = 3  # of a column while it is profiled: as read, as float64, sorted


def quantiles(sorted_values: np.ndarray, levels: np.ndarray = LEVELS) -> np.ndarray:
    """Linear-interpolation quantiles (numpy's default method) of already sorted values."""
    position = levels * (sorted_values.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, sorted_values.size - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def numeric(values: np.ndarray) -> dict[str, Any]:
    """The profile of one numeric column (NaN is missing; infinities are counted, then left out)."""
    values = np.asarray(values, dtype="float64")
    missing = int(np.isnan(values).sum())
    finite = values[np.isfinite(values)]  # a copy, so sorting it in place below is safe
    result: dict[str, Any] = {
        "kind": "numeric",
        "count": int(finite.size),
        "missing": missing,
        "infinite": int(values.size - missing - finite.size),
    }
    if finite.size == 0:
        return result
    finite.sort()  # one sort gives every quantile; in place: no second copy of a large column
    ordered = finite
    rng = np.random.default_rng(SEED)
    sample = ordered if ordered.size <= SAMPLE else np.sort(rng.choice(ordered, SAMPLE, replace=False))
    result.update(
        mean=float(ordered.mean()),
        std=float(ordered.std(ddof=1)) if ordered.size > 1 else 0.0,
        min=float(ordered[0]),
        max=float(ordered[-1]),
        quantiles=[float(q) for q in quantiles(ordered)],
        sample=[float(v) for v in sample],
    )
    return result


def categorical(series: pd.Series) -> dict[str, Any]:
    counts = series.dropna().astype("string").value_counts()
    frequencies = {str(k): int(v) for k, v in counts.iloc[:TOP_CATEGORIES].items()}
    if len(counts) > TOP_CATEGORIES:
        frequencies[OTHER] = int(counts.iloc[TOP_CATEGORIES:].sum())
    return {
        "kind": "categorical",
        "count": int(counts.sum()),
        "missing": int(series.isna().sum()),
        "frequencies": frequencies,
    }


def _column(series: pd.Series, kind: str) -> dict[str, Any]:
    if kind in ("int", "float"):
        return numeric(series.to_numpy(dtype="float64", na_value=np.nan))
    return categorical(series)


def profile(frame: pd.DataFrame, schema: list[dict[str, Any]], target: str | None) -> dict[str, Any]:
    """The whole profile of a frame in memory."""
    return _profile(lambda name: frame[name], [str(n) for n in frame.columns], len(frame), schema, target)


def profile_parquet(path: Path, schema: list[dict[str, Any]], target: str | None) -> dict[str, Any]:
    """The same profile, exactly, from a Parquet file read one column at a time.

    Exact quantiles need a column's values sorted, so memory is a few columns (one per
    thread, 8 bytes a row), never the whole table."""
    file = pq.ParquetFile(path)
    names, rows = file.schema_arrow.names, file.metadata.num_rows

    def column(name: str) -> pd.Series:
        return pq.read_table(path, columns=[name]).column(0).to_pandas()

    return _profile(column, names, rows, schema, target)


def profile_arrow(path: Path, schema: list[dict[str, Any]], target: str | None) -> dict[str, Any]:
    """The same profile, exactly, from an Arrow IPC stream file, memory-mapped: no decoding, unlike Parquet."""
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
        return _profile(lambda name: table.column(name).to_pandas(), table.column_names, table.num_rows, schema, target)


def _profile(
    column: Callable[[str], pd.Series], names: list[str], rows: int, schema: list[dict[str, Any]], target: str | None
) -> dict[str, Any]:
    """Columns in parallel threads (numpy's sort releases the GIL), as many as ``MEMORY`` holds."""
    kinds = {c["name"]: c["type"] for c in schema}
    workers = min(len(names), len(os.sched_getaffinity(0)), MEMORY // max(1, COPIES * 8 * rows))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        columns = dict(zip(names, pool.map(lambda n: _column(column(n), kinds.get(n, "string")), names)))
    result: dict[str, Any] = {
        "format": FORMAT,
        "rows": int(rows),
        "columns": columns,
        "quantileLevels": [float(u) for u in LEVELS],
        "sampleSize": SAMPLE,
        "seed": SEED,
    }
    if target and target in names:
        classes = column(target).dropna().astype("string").value_counts()
        result["target"] = {"name": target, "classes": {str(k): int(v) for k, v in classes.items()}}
    return result

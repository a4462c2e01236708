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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

FORMAT = 2
TAIL = 0.001 * 0.5 ** np.arange(1, 21)  # 5e-4 down to 1e-9: the extremes of up to a billion rows
LEVELS = np.unique(np.concatenate((np.linspace(0.0, 1.0, 1001), TAIL, 1.0 - TAIL)))
SAMPLE = 10_000
TOP_CATEGORIES = 1000
SEED = 0
OTHER = "__other__"


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
    finite = values[np.isfinite(values)]
    result: dict[str, Any] = {
        "kind": "numeric",
        "count": int(finite.size),
        "missing": missing,
        "infinite": int(values.size - missing - finite.size),
    }
    if finite.size == 0:
        return result
    ordered = np.sort(finite)  # one sort gives every quantile
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
    """The whole profile; columns in parallel threads (numpy's sort releases the GIL)."""
    kinds = {c["name"]: c["type"] for c in schema}
    names = [str(n) for n in frame.columns]
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), len(os.sched_getaffinity(0))))) as pool:
        columns = dict(zip(names, pool.map(lambda n: _column(frame[n], kinds.get(n, "string")), names)))
    result: dict[str, Any] = {
        "format": FORMAT,
        "rows": int(len(frame)),
        "columns": columns,
        "quantileLevels": [float(u) for u in LEVELS],
        "sampleSize": SAMPLE,
        "seed": SEED,
    }
    if target and target in frame.columns:
        classes = frame[target].dropna().astype("string").value_counts()
        result["target"] = {"name": target, "classes": {str(k): int(v) for k, v in classes.items()}}
    return result

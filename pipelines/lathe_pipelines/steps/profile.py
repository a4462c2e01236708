"""The reference profile DriftMonitor compares live traffic with (definitions in docs/dataset-profile.md).

Numeric columns: summary statistics, quantile bin edges with counts (enough for PSI,
Jensen-Shannon and Wasserstein without rereading the data) and a fixed-size seeded sample
for the KS test. Categorical columns: category frequencies. The target: class frequencies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BINS = 10
SAMPLE = 5000
TOP_CATEGORIES = 100
SEED = 0
OTHER = "__other__"


def _numeric(series: pd.Series) -> dict[str, Any]:
    values = np.sort(series.dropna().to_numpy(dtype="float64"))  # one sort gives quantiles and counts
    if values.size == 0:
        return {"kind": "numeric", "count": 0, "missing": int(series.isna().sum())}
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1), method="linear"))
    if edges.size == 1:  # constant column: one bin around the value
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    # Interior edges split the data; the outer bins are open-ended, so live values beyond the
    # reference range still land in the first or last bin.
    cuts = np.searchsorted(values, edges[1:-1], side="right")
    counts = np.diff(np.concatenate(([0], cuts, [values.size])))
    rng = np.random.default_rng(SEED)
    sample = values if values.size <= SAMPLE else np.sort(values[rng.choice(values.size, SAMPLE, replace=False)])
    return {
        "kind": "numeric",
        "count": int(values.size),
        "missing": int(series.isna().sum()),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "min": float(values[0]),
        "max": float(values[-1]),
        "binEdges": [float(e) for e in edges],
        "binCounts": [int(c) for c in counts],
        "sample": [float(v) for v in sample],
    }


def _categorical(series: pd.Series) -> dict[str, Any]:
    counts = series.dropna().astype("string").value_counts()
    top = counts.iloc[:TOP_CATEGORIES]
    frequencies = {str(k): int(v) for k, v in top.items()}
    if len(counts) > TOP_CATEGORIES:
        frequencies[OTHER] = int(counts.iloc[TOP_CATEGORIES:].sum())
    return {
        "kind": "categorical",
        "count": int(counts.sum()),
        "missing": int(series.isna().sum()),
        "frequencies": frequencies,
    }


def profile(frame: pd.DataFrame, schema: list[dict[str, Any]], target: str | None) -> dict[str, Any]:
    kinds = {c["name"]: c["type"] for c in schema}
    columns = {}
    for name in frame.columns:
        kind = kinds.get(str(name), "string")
        series = frame[name]
        columns[str(name)] = _numeric(series) if kind in ("int", "float") else _categorical(series)
    result: dict[str, Any] = {
        "rows": int(len(frame)),
        "columns": columns,
        "bins": BINS,
        "sampleSize": SAMPLE,
        "seed": SEED,
    }
    if target and target in frame.columns:
        classes = frame[target].dropna().astype("string").value_counts()
        result["target"] = {"name": target, "classes": {str(k): int(v) for k, v in classes.items()}}
    return result

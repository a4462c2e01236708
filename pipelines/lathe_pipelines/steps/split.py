"""Seeded, stratified train / validation / test split of a Dataset version."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Split:
    features: list[str]
    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split(
    frame: pd.DataFrame, target: str, seed: int, val: float = 0.15, test: float = 0.15, task: str = "classification"
) -> Split:
    """Stratified by class: every class keeps its share in each part; the same seed, the same rows. A regression
    target (``task``) is a float32 value per row, split at random: no classes."""
    if target not in frame.columns:
        raise ValueError(f"target column {target!r} is not in the data")
    features = [c for c in frame.columns if c != target and pd.api.types.is_numeric_dtype(frame[c])]
    if task == "regression":
        return _values(frame, target, features, seed, val, test)
    labels = frame[target].astype("string")
    classes = sorted(labels.dropna().unique().tolist(), key=lambda v: (len(v), v))
    index = {c: i for i, c in enumerate(classes)}
    y = labels.map(index).to_numpy(dtype="int64")
    x = frame[features].to_numpy(dtype="float32")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in range(len(classes)):
        rows = rng.permutation(np.flatnonzero(y == label))
        n_test, n_val = int(round(len(rows) * test)), int(round(len(rows) * val))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test : n_test + n_val])
        parts["train"].append(rows[n_test + n_val :])
    picked = {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}
    return Split(
        features,
        classes,
        x[picked["train"]],
        y[picked["train"]],
        x[picked["val"]],
        y[picked["val"]],
        x[picked["test"]],
        y[picked["test"]],
    )


def _values(frame: pd.DataFrame, target: str, features: list[str], seed: int, val: float, test: float) -> Split:
    if not pd.api.types.is_numeric_dtype(frame[target]) or pd.api.types.is_bool_dtype(frame[target]):
        raise ValueError(f"a regression target must be numeric; {target!r} is {frame[target].dtype}")
    missing = int(frame[target].isna().sum())
    if missing:
        raise ValueError(f"a regression target needs a value in every row; {target!r} has {missing} missing")
    y = frame[target].to_numpy(dtype="float32")
    x = frame[features].to_numpy(dtype="float32")
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test, n_val = int(round(len(order) * test)), int(round(len(order) * val))
    test_rows, val_rows, train_rows = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return Split(features, [], x[train_rows], y[train_rows], x[val_rows], y[val_rows], x[test_rows], y[test_rows])

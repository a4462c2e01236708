"""Seeded, stratified train / validation / test split of a Dataset version, encoded for training.

Numeric columns are features as they are; text (categorical) columns are one-hot encoded
over the categories of the training rows (``encoding.py``), which the exported model
repeats inside its graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import encoding as encodings
from .encoding import Encoding


@dataclass(frozen=True)
class Split:
    features: list[str]  # numeric columns
    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    encoding: Encoding


def split(
    frame: pd.DataFrame, target: str, seed: int, val: float = 0.15, test: float = 0.15, task: str = "classification"
) -> Split:
    """Stratified by class: every class keeps its share in each part; the same seed, the same rows. A regression
    target (``task``) is a float32 value per row, split at random: no classes."""
    if target not in frame.columns:
        raise ValueError(f"target column {target!r} is not in the data")
    features, categorical = encodings.kinds(frame, target)
    y, classes, parts = assign(frame[target], seed, val, test, task)
    fitted = encodings.fit(frame.iloc[parts["train"]], categorical)
    encoding = Encoding(features, fitted.categorical, fitted.categories)
    x = encodings.encode(frame, encoding)
    return Split(
        features,
        classes,
        x[parts["train"]],
        y[parts["train"]],
        x[parts["val"]],
        y[parts["val"]],
        x[parts["test"]],
        y[parts["test"]],
        encoding,
    )


def assign(
    target: pd.Series, seed: int, val: float = 0.15, test: float = 0.15, task: str = "classification"
) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """(the target as class indices or values, the classes, each part's rows in order) from the target column alone."""
    if task == "regression":
        return _values(target), [], _random(len(target), seed, val, test)
    labels = target.astype("string")
    classes = sorted(labels.dropna().unique().tolist(), key=lambda v: (len(v), v))
    index = {c: i for i, c in enumerate(classes)}
    y = labels.map(index).to_numpy(dtype="int64")
    return y, classes, _stratified(y, len(classes), seed, val, test)


def _stratified(y: np.ndarray, classes: int, seed: int, val: float, test: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in range(classes):
        rows = rng.permutation(np.flatnonzero(y == label))
        n_test, n_val = int(round(len(rows) * test)), int(round(len(rows) * val))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test : n_test + n_val])
        parts["train"].append(rows[n_test + n_val :])
    return {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}


def _values(target: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        raise ValueError(f"a regression target must be numeric; {target.name!r} is {target.dtype}")
    missing = int(target.isna().sum())
    if missing:
        raise ValueError(f"a regression target needs a value in every row; {target.name!r} has {missing} missing")
    return target.to_numpy(dtype="float32")


def _random(rows: int, seed: int, val: float, test: float) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(rows)
    n_test, n_val = int(round(len(order) * test)), int(round(len(order) * val))
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}

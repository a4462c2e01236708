"""Categorical columns, encoded inside the exported model, so whoever serves it passes raw values by name.

Every framework trains on one float32 matrix: the numeric columns, then a one-hot block per
categorical (text) column, over the categories seen in the training split (the ``MAX_CATEGORIES``
most frequent; rarer, unseen and missing values encode as all zeros). The exported model then
gets the same encoding as its first nodes (ONNX-ML ``OneHotEncoder``), and takes two inputs:
``input``, float32 [batch, numeric columns], and ``categories``, string [batch, categorical
columns], in the orders the model card lists (``columns.features``, ``columns.categorical``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

INPUT = "input"  # every exported model's float input (export.py): the numeric columns
CATEGORIES = "categories"  # the encoded model's string input
MAX_CATEGORIES = 64
ENCODED = "lathe_encoded"  # the one-hot matrix inside the graph: what the trained model's own input was
SPLITS_KEY = "encoding"  # in the prepare step's npz


@dataclass(frozen=True)
class Encoding:
    features: list[str]  # numeric columns: the ``input`` tensor
    categorical: list[str] = field(default_factory=list)  # text columns: the ``categories`` tensor
    categories: dict[str, list[str]] = field(default_factory=dict)

    def names(self) -> list[str]:
        """The trained model's input columns: numeric, then ``column=category`` for each one-hot column."""
        return [*self.features, *(f"{c}={v}" for c in self.categorical for v in self.categories[c])]

    def card(self) -> dict[str, Any]:
        """What the model card's ``columns`` adds for categorical columns (nothing for numeric-only data)."""
        return {"categorical": self.categorical, "categories": self.categories} if self.categorical else {}

    @classmethod
    def of(cls, columns: dict[str, Any]) -> Encoding:
        """From a model card's (or the prepare step's) ``columns``."""
        categorical = [str(c) for c in columns.get("categorical") or []]
        categories = {str(k): [str(v) for v in vs] for k, vs in (columns.get("categories") or {}).items()}
        return cls([str(f) for f in columns.get("features") or []], categorical, categories)


def kinds(frame: pd.DataFrame, target: str) -> tuple[list[str], list[str]]:
    """(numeric columns, categorical columns) besides the target; booleans count as numbers, times as neither."""
    numeric, categorical = [], []
    for name in frame.columns:
        if name == target:
            continue
        series = frame[name]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            numeric.append(str(name))
        elif isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series):
            categorical.append(str(name))
        elif series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
            categorical.append(str(name))  # text with missing values, as pandas reads it
    return numeric, categorical


def text(values: Any) -> np.ndarray:
    """A column as strings, missing values as "" (which no category is: they encode as zeros)."""
    series = pd.Series(values, dtype="object")
    return np.asarray(series.where(series.notna(), "").map(str), dtype=object)


def fit(frame: pd.DataFrame, categorical: list[str]) -> Encoding:
    """Categories of each column from these (training) rows, most frequent first; a column with none is left out."""
    return ranked(counts(frame, categorical))


def counts(frame: pd.DataFrame, categorical: list[str]) -> dict[str, pd.Series]:
    """Each column's count of each category in these rows (missing values are none); rows in batches add up."""
    result = {}
    for name in categorical:
        counted = pd.Series(text(frame[name])).value_counts()
        result[name] = counted[counted.index != ""]
    return result


def add(total: dict[str, pd.Series], more: dict[str, pd.Series]) -> dict[str, pd.Series]:
    return {name: total[name].add(more[name], fill_value=0).astype("int64") for name in total}


def ranked(counted: dict[str, pd.Series]) -> Encoding:
    """The ``MAX_CATEGORIES`` most frequent of each column (ties by value); a column with none is left out."""
    kept, categories = [], {}
    for name, column in counted.items():
        top = sorted(column.items(), key=lambda pair: (-pair[1], pair[0]))[:MAX_CATEGORIES]
        if top:
            kept.append(name)
            categories[name] = [str(value) for value, _ in top]
    return Encoding([], kept, categories)


def encode(frame: pd.DataFrame, encoding: Encoding) -> np.ndarray:
    """The float32 matrix a model trains on: numeric columns, then the one-hot blocks."""
    blocks = [frame[encoding.features].to_numpy(dtype="float32")] if encoding.features else []
    for name in encoding.categorical:
        values = text(frame[name])
        blocks.append(
            (values[:, None] == np.asarray(encoding.categories[name], dtype=object)[None, :]).astype("float32")
        )
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), dtype="float32")


def decode(x: np.ndarray, encoding: Encoding) -> tuple[np.ndarray, np.ndarray]:
    """The raw inputs back from encoded rows: (numbers, strings); an all-zero block is ""."""
    width = len(encoding.features)
    strings = np.empty((len(x), len(encoding.categorical)), dtype=object)
    start = width
    for j, name in enumerate(encoding.categorical):
        cats = np.asarray(encoding.categories[name], dtype=object)
        block = x[:, start : start + len(cats)]
        strings[:, j] = np.where(block.max(axis=1) > 0.5, cats[block.argmax(axis=1)], "")
        start += len(cats)
    return x[:, :width].astype("float32"), strings


def feeds(x: np.ndarray, encoding: Encoding | None) -> dict[str, np.ndarray]:
    """An exported model's inputs for encoded rows (parity and evaluation run the served graph on raw values)."""
    if encoding is None or not encoding.categorical:
        return {INPUT: x.astype("float32")}
    numbers, strings = decode(x, encoding)
    return {**({INPUT: numbers} if encoding.features else {}), CATEGORIES: strings}


def save(encoding: Encoding) -> np.ndarray:
    """For the prepare step's npz (a string array: np.load needs no pickle)."""
    return np.asarray(json.dumps({"features": encoding.features, **encoding.card()}))


def load(data: Any) -> Encoding | None:
    """From a loaded npz; None for numeric-only data (and npz files from before categorical columns)."""
    if SPLITS_KEY not in getattr(data, "files", ()):
        return None
    encoding = Encoding.of(json.loads(str(data[SPLITS_KEY])))
    return encoding if encoding.categorical else None


def wrap(model: Any, encoding: Encoding) -> Any:
    """The model (ONNX ModelProto, input ``input`` over the encoded columns) behind the one-hot encoding."""
    from onnx import TensorProto, helper

    graph = model.graph
    inner = next(value for value in graph.input if value.name == INPUT)
    for node in graph.node:
        node.input[:] = [ENCODED if name == inner.name else name for name in node.input]
    head, parts = [], []
    if encoding.features:
        parts.append(INPUT)
    for j, name in enumerate(encoding.categorical):
        index, picked, hot = f"lathe_column_{j}", f"lathe_category_{j}", f"lathe_onehot_{j}"
        graph.initializer.append(helper.make_tensor(index, TensorProto.INT64, [1], [j]))
        head += [
            helper.make_node("Gather", [CATEGORIES, index], [picked], axis=1),
            helper.make_node(
                "OneHotEncoder",
                [picked],
                [hot + "_3d"],
                domain="ai.onnx.ml",
                cats_strings=encoding.categories[name],
                zeros=1,
            ),
            helper.make_node("Flatten", [hot + "_3d"], [hot], axis=1),
        ]
        parts.append(hot)
    head.append(helper.make_node("Concat", parts, [ENCODED], axis=1))
    nodes = [*head, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.input.remove(inner)
    inputs = [helper.make_tensor_value_info(CATEGORIES, TensorProto.STRING, [None, len(encoding.categorical)])]
    if encoding.features:
        inputs.insert(0, helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, len(encoding.features)]))
    for position, value in enumerate(inputs):
        graph.input.insert(position, value)
    if not any(o.domain == "ai.onnx.ml" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 1))
    return model


def wrap_file(path: Path, encoding: Encoding | None) -> str:
    """Wrap model.onnx in place when there are categorical columns; its sha256 either way."""
    if encoding is not None and encoding.categorical:
        import onnx

        model = wrap(onnx.load(str(path)), encoding)
        onnx.checker.check_model(model)
        path.write_bytes(model.SerializeToString())
    return hashlib.sha256(path.read_bytes()).hexdigest()

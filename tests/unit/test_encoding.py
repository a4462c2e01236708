"""Categorical columns: fitted on training rows, one-hot for training, the same encoding inside the ONNX graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from lathe_pipelines.steps import encoding as encodings
from lathe_pipelines.steps import sklearn_model
from lathe_pipelines.steps.encoding import Encoding
from lathe_pipelines.steps.split import split


def frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], rows)
    size = rng.normal(0, 1, rows)
    label = np.where((color == "red") ^ (size > 0), "yes", "no")
    city = pd.Series(rng.choice(["oslo", "lima", None], rows), dtype="object")
    return pd.DataFrame({"size": size, "color": color, "city": city, "when": pd.Timestamp(0), "label": label})


def test_kinds_fit_and_encode() -> None:
    data = frame()
    assert encodings.kinds(data, "label") == (["size"], ["color", "city"])  # times are neither
    fitted = encodings.fit(data, ["color", "city"])
    assert sorted(fitted.categories["color"]) == ["blue", "green", "red"]
    assert sorted(fitted.categories["city"]) == ["lima", "oslo"]  # missing is no category
    encoding = Encoding(["size"], fitted.categorical, fitted.categories)
    x = encodings.encode(data, encoding)
    assert x.shape == (400, 1 + 3 + 2) and x.dtype == np.float32
    assert (x[:, 1:4].sum(axis=1) == 1).all()
    missing = data["city"].isna().to_numpy()
    assert (x[missing, 4:].sum(axis=1) == 0).all() and (x[~missing, 4:].sum(axis=1) == 1).all()
    numbers, strings = encodings.decode(x, encoding)
    assert np.array_equal(numbers[:, 0], data["size"].to_numpy(dtype="float32"))
    assert list(strings[:, 0]) == list(data["color"]) and list(strings[:, 1]) == list(data["city"].fillna(""))
    assert encoding.names()[:2] == ["size", f"color={fitted.categories['color'][0]}"]


def test_rare_categories_beyond_the_cap_encode_as_zeros() -> None:
    values = [f"c{i}" for i in range(encodings.MAX_CATEGORIES + 10) for _ in range(2)] + ["c0"] * 5
    fitted = encodings.fit(pd.DataFrame({"c": values}), ["c"])
    assert len(fitted.categories["c"]) == encodings.MAX_CATEGORIES and fitted.categories["c"][0] == "c0"
    assert encodings.fit(pd.DataFrame({"c": [None, None]}), ["c"]).categorical == []  # nothing to encode


def test_split_fits_categories_on_training_rows_only() -> None:
    data = frame()
    data.loc[:9, "color"] = [f"rare{i}" for i in range(10)]  # one row each: in whichever part it lands
    parts = split(data, "label", seed=3)
    assert parts.features == ["size"] and parts.encoding.categorical == ["color", "city"]
    colors = parts.encoding.categories["color"]
    assert 3 < len(colors) < 13  # some rare ones went to validation or test, and are not categories
    assert (parts.x_train[:, 1 : 1 + len(colors)].sum(axis=0) > 0).all()  # every category is seen in training
    assert (parts.x_test[:, 1 : 1 + len(colors)].sum(axis=1) == 0).any()  # a rare one in test: all zeros


@pytest.mark.parametrize("numeric", [True, False])
def test_the_exported_graph_encodes_raw_values_as_training_did(tmp_path: Path, numeric: bool) -> None:
    data = frame() if numeric else frame().drop(columns=["size"])
    parts = split(data, "label", seed=1)
    model = sklearn_model.fit("sklearn", "LogisticRegression", {}, 1, parts.x_train, parts.y_train, 2)
    path = tmp_path / "model.onnx"
    sklearn_model.export(model, parts.x_train.shape[1], path)
    encodings.wrap_file(path, parts.encoding)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["input", "categories"] if numeric else ["categories"])
    test = data.iloc[:50]
    raw = {"categories": np.stack([encodings.text(test[c]) for c in parts.encoding.categorical], axis=1)}
    if numeric:
        raw["input"] = test[["size"]].to_numpy(dtype="float32")
    raw["categories"][0, 0] = "never-seen"  # unknown: all zeros, as in training
    logits = session.run(["logits"], raw)[0]
    x = encodings.encode(test, parts.encoding)
    x[0, len(parts.features) : len(parts.features) + 3] = 0
    expected = model.predict_proba(x)
    assert np.abs(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True) - expected).max() < 1e-5
    checked = sklearn_model.parity(model, path, parts.x_test, encoding=parts.encoding)
    assert checked["argmaxAgreement"] == 1.0

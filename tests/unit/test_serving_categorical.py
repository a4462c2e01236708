"""A model with categorical columns behind the model server's contract: raw values by name, refusals, logs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lathe_pipelines.drift import harvest, window
from lathe_pipelines.steps import encoding as encodings
from lathe_pipelines.steps import sklearn_model
from lathe_pipelines.steps.split import split
from lathe_serving import protocols
from lathe_serving.logsink import SCHEMA
from lathe_serving.model import LatheModel, ModelError
from tests.unit.test_encoding import frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[LatheModel, object, object]:
    directory = tmp_path_factory.mktemp("model")
    parts = split(frame(), "label", 2)
    model = sklearn_model.fit("sklearn", "LogisticRegression", {}, 2, parts.x_train, parts.y_train, 2)
    sklearn_model.export(model, parts.x_train.shape[1], directory / "model.onnx")
    digest = encodings.wrap_file(directory / "model.onnx", parts.encoding)
    columns = {"features": parts.features, **parts.encoding.card(), "classes": parts.classes, "target": "label"}
    card = {"name": "rides", "version": 1, "sha256": digest, "columns": columns}
    (directory / "model.json").write_text(json.dumps(card))
    served = LatheModel(str(directory), threads=1)
    served.load()
    return served, model, parts


def test_raw_values_by_name_give_the_frameworks_probabilities(trained: tuple) -> None:
    served, model, parts = trained
    assert served.columns == ["size"] and served.categorical == ["color", "city"]
    data = frame().iloc[:30]
    expected = model.predict_proba(encodings.encode(data, parts.encoding))
    rows = [[s, c, t] for s, c, t in zip(data["size"], data["color"], data["city"])]  # the card's order
    assert np.abs(served.predict(rows) - expected).max() < 1e-5
    shuffled = [[t, "extra", c, s] for s, c, t in zip(data["size"], data["color"], data["city"])]
    checked = served.check(shuffled, names=["city", "id", "color", "size"])  # any order; extra columns ignored
    assert np.abs(served.infer(checked) - expected).max() < 1e-5
    seldon = served.predict(np.asarray(shuffled, dtype=object), names=["city", "id", "color", "size"])  # Seldon's call
    assert np.abs(seldon - expected).max() < 1e-5
    by_column = protocols.v2_inputs(
        {
            "inputs": [
                {"name": "color", "datatype": "BYTES", "shape": [30], "data": data["color"].tolist()},
                {"name": "size", "datatype": "FP64", "shape": [30, 1], "data": [[v] for v in data["size"]]},
                {"name": "city", "datatype": "BYTES", "shape": [30], "data": data["city"].tolist()},
            ]
        },
        text=True,
    )
    assert np.abs(served.infer(served.check(by_column)) - expected).max() < 1e-5
    names = [i["name"] for i in served.init_metadata()["inputs"]]
    assert names == ["size", "color", "city"]


@pytest.mark.parametrize(
    ("rows", "names", "reason"),
    [
        ([[1.0, "red"]], ["size", "color"], "MissingColumns"),
        ([[1.0, "red", "oslo"]], ["size", "color"], "InvalidShape"),
        ([["big", "red", "oslo"]], None, "InvalidInput"),
        ([[1.0, ["red"], "oslo"]], None, "InvalidInput"),
        ([[float("inf"), "red", "oslo"]], None, "InvalidInput"),
    ],
)
def test_bad_rows_are_refused_with_a_reason(trained: tuple, rows: list, names: list | None, reason: str) -> None:
    with pytest.raises(ModelError) as refused:
        trained[0].check(rows, names=names)
    assert refused.value.reason == reason and refused.value.status_code == 400


def test_unseen_and_missing_categories_encode_as_no_category(trained: tuple) -> None:
    served, model, parts = trained
    got = served.predict([[0.5, "violet", None], [0.5, "red", 7]])
    x = np.zeros((2, len(parts.encoding.names())), dtype="float32")
    x[:, 0] = 0.5
    x[1, 1 + parts.encoding.categories["color"].index("red")] = 1
    assert np.abs(got - model.predict_proba(x)).max() < 1e-5


def test_logged_text_reaches_drift_windows_and_retrain_rows(trained: tuple) -> None:
    served = trained[0]
    rows = served.check([[0.5, "red", "oslo"], [1.5, "blue", None]])
    logged = [served.raw(row) for row in rows]
    assert logged == [([0.5], ["red", "oslo"]), ([1.5], ["blue", ""])]
    records = [
        {"kind": "prediction", "request_id": "r", "answer": "t", "version": 1, "shadow": False}
        | {"features": f, "categories": c}
        for f, c in logged
    ] + [{"kind": "feedback", "request_id": "r", "answer": "t", "truth": t} for t in ("yes", "no")]
    table = pa.Table.from_pylist([{n: r.get(n) for n in SCHEMA.names} for r in records], SCHEMA)
    seen = window.from_logs(table, ["size"], ["color", "city"])
    assert list(seen.columns["color"]) == ["red", "blue"] and list(seen.columns["city"]) == ["oslo", None]
    values, truth = harvest.labelled(table, 1, 2)
    assert values.tolist() == [[0.5, "red", "oslo"], [1.5, "blue", None]] and truth == ["yes", "no"]
    base = pa.schema([("size", pa.float64()), ("color", pa.string()), ("city", pa.string()), ("label", pa.string())])
    out = harvest.traffic_table(base, ["size", "color", "city"], "label", values, truth)
    assert out.column("city").to_pylist() == ["oslo", None] and out.column("size").type == pa.float64()


def test_the_card_must_match_the_graph(trained: tuple, tmp_path: Path) -> None:
    served = trained[0]
    data = (served.model_dir / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(data)
    card = {**served.card, "columns": {**served.card["columns"], "categorical": ["color"]}}
    card["sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="categorical columns do not match"):
        LatheModel(str(tmp_path)).load()

"""The Seldon-contract model class with a tiny real ONNX model: predictions, refusals, checksums."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps.classifier import train
from lathe_pipelines.steps.export import export
from lathe_pipelines.steps.split import split
from lathe_serving.model import LatheModel, ModelError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    parts = split(digits().iloc[:600], "label", 5)
    trained = train(parts.x_train, parts.y_train, parts.x_val, parts.y_val, 10, "mlp", {"epochs": 3, "hidden": [32]}, 5)
    digest = export(trained.model, 64, directory / "model.onnx")
    (directory / "model.json").write_text(
        json.dumps({"name": "digits", "version": 3, "sha256": digest, "columns": {"classes": parts.classes}})
    )
    return directory


@pytest.fixture(scope="module")
def model(model_dir: Path) -> LatheModel:
    loaded = LatheModel(str(model_dir), threads=1)
    loaded.load()
    return loaded


def test_predicts_probabilities_like_onnxruntime(model: LatheModel, model_dir: Path) -> None:
    rows = digits().drop(columns="label").to_numpy(dtype="float32")[:20]
    probabilities = model.predict(rows.tolist())
    assert probabilities.shape == (20, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    logits = ort.InferenceSession(str(model_dir / "model.onnx")).run(None, {"input": rows})[0]
    assert (probabilities.argmax(1) == logits.argmax(1)).all()
    assert model.predict(rows[0].tolist()).shape == (1, 10)  # one row may come unwrapped
    assert model.health_status() == {"model": "digits", "version": 3, "ready": True}
    assert model.init_metadata()["inputs"][0]["shape"] == [-1, 64]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([[1.0] * 63], "InvalidShape"),
        ([], "InvalidShape"),
        ([["a"] * 64], "InvalidInput"),
        ([[float("nan")] * 64], "InvalidInput"),
        ([[[1.0] * 64]], "InvalidShape"),
        ("hello", "InvalidInput"),
        ([[1.0] * 64] * 10_001, "TooManyRows"),
        ({"x": 1}, "InvalidInput"),
    ],
)
def test_bad_input_is_a_4xx_with_a_reason(model: LatheModel, payload: object, reason: str) -> None:
    with pytest.raises(ModelError) as error:
        model.predict(payload)
    assert error.value.reason == reason and 400 <= error.value.status_code < 500
    assert error.value.to_dict()["status"]["reason"] == reason


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=70) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=80,
)


@settings(max_examples=1000, deadline=None)
@given(payload=json_values)
def test_any_json_payload_gets_an_answer_or_a_4xx(model: LatheModel, payload: object) -> None:
    try:
        result = model.predict(payload)
    except ModelError as error:
        assert 400 <= error.status_code < 500
    else:
        assert np.isfinite(result).all()


def test_a_model_that_fails_its_checksum_is_refused(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes((model_dir / "model.onnx").read_bytes() + b"tampered")
    (tmp_path / "model.json").write_text((model_dir / "model.json").read_text())
    with pytest.raises(ModelError) as error:
        LatheModel(str(tmp_path)).load()
    assert error.value.reason == "ChecksumMismatch"
    assert hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest() in (model_dir / "model.json").read_text()


def test_feedback_carries_or_names_the_answer_it_grades() -> None:
    from lathe_serving import protocols

    answer = {
        "data": {"names": ["0", "1", "2"], "ndarray": [[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]]},
        "meta": {"puid": "r1", "requestPath": {"model": "digits:4"}, "tags": {"lathe.dev/answer": "ab12"}},
    }
    assert protocols.seldon_answer(answer) == ((4, ["1", "0"]), "ab12")
    assert protocols.seldon_answer({"meta": {"puid": "r1"}}) is None
    assert protocols.seldon_answer({**answer, "meta": {**answer["meta"], "tags": {}}}) is None  # unsigned
    assert protocols.seldon_feedback({"response": answer, "truth": {"data": {"ndarray": [[1], [2.0]]}}}) == (
        "r1",
        ["1", "2"],
    )
    for bad in (
        {"truth": {}},
        {"response": answer},
        {"response": answer, "truth": {"data": {"ndarray": [[1, 2]]}}},
        {"response": answer, "truth": {"data": {"ndarray": ["x" * 257]}}},  # a class past 256 characters
        {"response": answer, "truth": {"data": {"ndarray": [1] * 10_001}}},  # more rows than a request may have
        [],
    ):
        with pytest.raises(ModelError) as error:
            protocols.seldon_feedback(bad)
        assert error.value.status_code == 400

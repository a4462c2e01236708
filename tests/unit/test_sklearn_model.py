"""scikit-learn API classifiers (scikit-learn's, XGBoost's, LightGBM's) through Lathe's ONNX contract: the
export, its parity, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnxruntime.quantization import QuantType, quantize_dynamic
from sklearn.datasets import load_digits

from lathe_pipelines.steps import sklearn_model
from lathe_pipelines.steps.errors import TrainingFailed

X, Y = load_digits(return_X_y=True)
X = X.astype(np.float32)


@pytest.mark.parametrize(
    ("framework", "name", "parameters"),
    [
        ("sklearn", "RandomForestClassifier", {"n_estimators": 20, "max_depth": 8}),
        ("sklearn", "HistGradientBoostingClassifier", {"max_iter": 15}),
        ("sklearn", "LogisticRegression", {"max_iter": 300, "C": 0.5}),
        ("xgboost", "XGBClassifier", {"n_estimators": 20, "max_depth": 3}),
        ("lightgbm", "LGBMClassifier", {"n_estimators": 20, "num_leaves": 7, "min_data_in_leaf": 5}),
    ],
)
def test_the_export_is_lathes_contract_and_agrees_with_the_framework(
    tmp_path: Path, framework: str, name: str, parameters: dict[str, object]
) -> None:
    model = sklearn_model.fit(framework, name, parameters, 7, X[:1200], Y[:1200], 10)
    path = tmp_path / "model.onnx"
    sha256 = sklearn_model.export(model, X.shape[1], path)
    graph = onnx.load(path)
    assert [i.name for i in graph.graph.input] == ["input"] and [o.name for o in graph.graph.output] == ["logits"]
    domains = [o.domain for o in graph.opset_import]
    assert "" in domains and len(domains) == len(set(domains))  # what onnxruntime's quantizer (edge) needs
    quantize_dynamic(str(path), str(tmp_path / "model.int8.onnx"), weight_type=QuantType.QInt8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": X[1200:]})[0]  # outputs[0], as the model server reads it
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.abs(probabilities - model.predict_proba(X[1200:])).max() < 1e-5
    checked = sklearn_model.parity(model, path, X[1200:], framework=framework)
    assert checked["maxAbsDiff"] < 1e-5 and checked["argmaxAgreement"] == 1.0 and len(sha256) == 64
    assert model.get_params().get("random_state", 7) == 7  # the run's seed where the estimator takes one


def test_parity_fails_when_the_graph_disagrees(tmp_path: Path) -> None:
    model = sklearn_model.fit("sklearn", "LogisticRegression", {"max_iter": 300}, 0, X[:1200], Y[:1200], 10)
    other = sklearn_model.fit("sklearn", "LogisticRegression", {"max_iter": 300, "C": 1e-4}, 0, X[:1200], Y[:1200], 10)
    sklearn_model.export(other, X.shape[1], tmp_path / "model.onnx")
    with pytest.raises(TrainingFailed, match="differs from scikit-learn") as failed:
        sklearn_model.parity(model, tmp_path / "model.onnx", X[1200:])
    assert failed.value.reason == "ParityMismatch"


SK, XGB, LGBM = "sklearn", "xgboost", "lightgbm"


@pytest.mark.parametrize(
    ("framework", "name", "parameters", "reason", "message"),
    [
        (SK, "RandomForest", {}, "UnknownModelType", "'RandomForest' is not a scikit-learn classifier"),
        (SK, "RandomForestRegressor", {}, "UnknownModelType", "is not a scikit-learn classifier"),
        (SK, "RandomForestClassifier", {"n_estimators": -1}, "InvalidHyperparameters", "'n_estimators' parameter"),
        (SK, "RandomForestClassifier", {"trees": 5}, "InvalidHyperparameters", "unexpected keyword argument 'trees'"),
        (SK, "RandomForestClassifier", {"max_depth": {"a": 1}}, "InvalidHyperparameters", "numbers, strings or"),
        (SK, "RidgeClassifier", {}, "UnsupportedModel", "gives no probabilities"),
        (SK, "StackingClassifier", {}, "InvalidHyperparameters", "estimators"),  # a meta-estimator needs estimators
        (XGB, "XGBRFClassifier", {}, "UnknownModelType", "'XGBRFClassifier' is not an XGBoost classifier"),
        (XGB, "XGBRegressor", {}, "UnknownModelType", r"not an XGBoost classifier \(e.g. XGBClassifier\)"),
        (XGB, "XGBClassifier", {"max_depth": -3}, "InvalidHyperparameters", "max_depth should be greater equal to 0"),
        (XGB, "XGBClassifier", {"n_estimator": 5}, "InvalidHyperparameters", 'Parameters: { "n_estimator" } are not'),
        (LGBM, "LGBMClassifier", {"num_leaves": 1}, "InvalidHyperparameters", r"Check failed: \(num_leaves\) > \(1\)"),
        (
            LGBM,
            "LGBMClassifier",
            {"num_leafs": 9},
            "InvalidHyperparameters",
            r"LightGBM has no parameter \['num_leafs'\]",
        ),
    ],
)
def test_refusals_name_what_is_wrong(
    framework: str, name: str, parameters: dict[str, object], reason: str, message: str
) -> None:
    with pytest.raises(TrainingFailed, match=message) as failed:
        sklearn_model.fit(framework, name, parameters, 0, X[:300], Y[:300], 10)
    assert failed.value.reason == reason


def test_a_framework_that_is_not_installed_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # what an image without LightGBM gives importlib
    with pytest.raises(TrainingFailed, match="LightGBM is not installed in this image") as failed:
        sklearn_model.fit("lightgbm", "LGBMClassifier", {}, 0, X[:300], Y[:300], 10)
    assert failed.value.reason == "FrameworkNotInstalled"


def test_a_training_split_missing_a_class_is_refused() -> None:
    some = Y[:600] < 9
    with pytest.raises(TrainingFailed, match="has classes") as failed:
        sklearn_model.fit("sklearn", "LogisticRegression", {"max_iter": 200}, 0, X[:600][some], Y[:600][some], 10)
    assert failed.value.reason == "MissingClasses"


def test_parameters_keep_their_types_through_kfps_structs() -> None:
    """kfp carries dict parameters as protobuf Structs (every number a double): 12 must stay 12, 1 stay 1."""
    from google.protobuf import json_format, struct_pb2

    from lathe_operator.api.v1alpha1 import TrainingRun
    from lathe_operator.reconcile.training_run import Submit, pipeline_arguments

    spec = {"n_estimators": 50, "max_depth": 12, "max_features": 1, "min_impurity_decrease": 0.0}
    run = TrainingRun.model_validate(
        {
            "apiVersion": "lathe.dev/v1alpha1",
            "kind": "TrainingRun",
            "metadata": {"name": "forest", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "dataset": {"name": "digits"},
                "model": {
                    "name": "m",
                    "framework": "sklearn",
                    "estimator": "RandomForestClassifier",
                    "parameters": spec,
                },
            },
        }
    )
    arguments = pipeline_arguments(run, Submit("forest-1", "sha256:" + "a" * 64, "label"), "", {})
    assert arguments["model_type"] == "sklearn:RandomForestClassifier"
    written = arguments["lineage"]["model"]  # what a card keeps and a retrain's TrainingRun is made from
    assert (
        "type" not in written and "hyperparameters" not in written and written["estimator"] == "RandomForestClassifier"
    )
    carried = struct_pb2.Struct()
    carried.update(arguments["hyperparameters"])
    found = sklearn_model.parameters(json_format.MessageToDict(carried))
    assert found == spec and {k: type(v) for k, v in found.items()} == {k: type(v) for k, v in spec.items()}
    with pytest.raises(TrainingFailed, match="JSON text"):
        sklearn_model.parameters({"max_depth": 12.0})
    run.spec.model.framework, run.spec.model.estimator = "xgboost", None  # XGBoost's default classifier
    assert pipeline_arguments(run, Submit("b", "sha256:" + "a" * 64, "label"), "", {})["model_type"] == (
        "xgboost:XGBClassifier"
    )


@pytest.mark.parametrize(
    ("framework", "name", "parameters"),
    [
        ("sklearn", "RandomForestRegressor", {"n_estimators": 30}),
        ("sklearn", "Ridge", {"alpha": 0.1}),
        ("xgboost", "XGBRegressor", {"n_estimators": 60, "max_depth": 3}),
        ("lightgbm", "LGBMRegressor", {"n_estimators": 80, "num_leaves": 7}),
    ],
)
def test_a_regressor_exports_its_values_and_agrees_with_the_framework(
    tmp_path: Path, framework: str, name: str, parameters: dict[str, object]
) -> None:
    """On float features (the diabetes data), where LightGBM's double thresholds rounded to the nearest float32
    sent one row 0.8 the other way before they were written as the largest float32 below them."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = x.astype(np.float32)
    model = sklearn_model.fit(framework, name, parameters, 42, x[:380], y[:380], 0, "regression")
    path = tmp_path / "model.onnx"
    sklearn_model.export(model, x.shape[1], path, "regression")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["value"]
    for rows in (x[:380], x[380:]):  # training rows sit on the thresholds; held-out rows near them
        values = session.run(None, {"input": rows})[0]
        assert values.shape == (len(rows), 1) and np.abs(values[:, 0] - model.predict(rows)).max() < 1e-3
    assert sklearn_model.parity(model, path, x[380:], framework=framework, task="regression")["maxAbsDiff"] < 1e-4
    with pytest.raises(TrainingFailed, match="is not a scikit-learn regressor"):
        sklearn_model.fit("sklearn", "RandomForestClassifier", {}, 0, x[:50], y[:50], 0, "regression")

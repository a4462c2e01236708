"""scikit-learn API classifiers (scikit-learn's own, XGBoost's and LightGBM's): fit one with the TrainingRun's
parameters, export it with skl2onnx (onnxmltools' converters for the boosters) to Lathe's contract.

Lathe's ONNX contract (``export.INPUT``, ``export.OUTPUT``): one float input ``input`` of
shape [batch, features] and, as the only output, ``logits`` of shape [batch, classes] that a
softmax turns into class probabilities. A classifier's probabilities p become log(p): the
softmax of log(p) is p again, so serving, batch scoring, the edge runner and evaluation read
a scikit-learn model exactly as a PyTorch one. Parity: onnxruntime's probabilities against
``predict_proba`` on the held-out rows.

``model_type`` names one: ``<framework>:<class name>``, e.g. ``sklearn:RandomForestClassifier`` or
``xgboost:XGBClassifier``.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from . import boosting
from . import encoding as encodings
from .encoding import feeds
from .errors import TrainingFailed
from .export import INPUT, OPSET, OUTPUT, VALUE, output_name, verdict

FRAMEWORKS = ("sklearn", "xgboost", "lightgbm")
NAMES = {"sklearn": "scikit-learn", **boosting.NAMES}
ARTICLES = {"xgboost": "an"}
FLOOR = 1e-30  # log(0) would be -inf; a class the model gives no chance keeps e**-69 instead
SCALARS = (bool, int, float, str, type(None))


def parameters(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The estimator's parameters from the pipeline's ``hyperparameters``: JSON text under ``json``, so that
    integers stay integers through kfp (whose dict parameters carry every number as a double)."""
    try:
        found = json.loads(hyperparameters["json"])
    except (KeyError, TypeError, ValueError) as error:
        raise TrainingFailed("InvalidHyperparameters", f"model parameters must come as JSON text: {error}") from error
    if not isinstance(found, dict):
        raise TrainingFailed("InvalidHyperparameters", "model parameters must be a mapping")
    return found


def split(model_type: str) -> tuple[str, str] | None:
    """(framework, class name) of a scikit-learn API model_type; None for a PyTorch architecture."""
    framework, _, name = model_type.partition(":")
    return (framework, name) if framework in FRAMEWORKS and name else None


KINDS = {"classification": "classifier", "regression": "regressor"}


def estimators(framework: str = "sklearn", task: str = "classification") -> dict[str, type]:
    if framework != "sklearn":
        return boosting.estimators(framework, task)
    from sklearn.utils import all_estimators

    return dict(all_estimators(type_filter=KINDS[task]))


def estimator(framework: str, name: str, parameters: dict[str, Any], seed: int, task: str = "classification") -> Any:
    """The named classifier (regressor) with these constructor parameters (``random_state`` defaults to the seed)."""
    known = estimators(framework, task)
    if name not in known:
        some = known if framework != "sklearn" else (f"RandomForest{KINDS[task].title()}", "Ridge", "SVC")
        examples = ", ".join(n for n in some if n in known)
        raise TrainingFailed(
            "UnknownModelType",
            f"{name!r} is not {ARTICLES.get(framework, 'a')} {NAMES[framework]} {KINDS[task]} (e.g. {examples})",
        )
    nested = sorted(k for k, v in parameters.items() if not isinstance(v, SCALARS))
    if nested:
        raise TrainingFailed(
            "InvalidHyperparameters", f"{name} parameters must be numbers, strings or booleans: {nested}"
        )
    model_class = known[name]
    unknown = boosting.unknown(framework, model_class, parameters)
    if unknown:
        raise TrainingFailed("InvalidHyperparameters", f"{name}: {NAMES[framework]} has no parameter {unknown}")
    parameters = {**boosting.defaults(framework), **parameters}
    try:
        if "random_state" in model_class().get_params() and "random_state" not in parameters:
            parameters["random_state"] = seed
        return model_class(**parameters)
    except TypeError as error:  # an argument the class does not take, or one it needs (a meta-estimator's)
        raise TrainingFailed("InvalidHyperparameters", f"{name}: {error}") from error


def fit(
    framework: str,
    name: str,
    parameters: dict[str, Any],
    seed: int,
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    task: str = "classification",
) -> Any:
    model = estimator(framework, name, parameters, seed, task)
    rejects = (ValueError, TypeError) + (boosting.errors(framework) if framework != "sklearn" else ())
    try:
        with boosting.fitting(framework, name):
            model.fit(x, y)
    except rejects as error:  # scikit-learn's InvalidParameterError is a ValueError; so is XGBoost's error
        raise TrainingFailed("InvalidHyperparameters", f"{name}: {str(error).strip()}") from error
    if task == "regression":
        return model
    if not hasattr(model, "predict_proba"):
        raise TrainingFailed("UnsupportedModel", f"{name} gives no probabilities (predict_proba); Lathe serves those")
    if list(model.classes_) != list(range(classes)):
        raise TrainingFailed("MissingClasses", f"the training split has classes {list(model.classes_)} of {classes}")
    return model


def export(model: Any, features: int, path: Path, task: str = "classification") -> str:
    """Write model.onnx in Lathe's contract and return its sha256: a classifier's log-probabilities as
    ``logits``, a regressor's predictions as ``value`` [batch, 1]."""
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    if not type(model).__module__.startswith("sklearn"):
        boosting.register(type(model), task)
    options = {id(model): {"zipmap": False}} if task != "regression" else None
    try:
        with warnings.catch_warnings():
            # skl2onnx 1.20 hands protobuf numpy booleans for a gradient-boosting tree's int attributes
            # (missing-value tracks): accepted, with a notice that protobuf 7.34 will not; pinned below that.
            warnings.filterwarnings("ignore", "Field onnx.AttributeProto.ints", DeprecationWarning)
            graph = to_onnx(
                model,
                initial_types=[(INPUT, FloatTensorType([None, features]))],
                options=options,
                target_opset={"": OPSET, "ai.onnx.ml": 3},
            )
    except Exception as error:  # skl2onnx raises many kinds for what it cannot convert
        raise TrainingFailed("ExportFailed", f"cannot convert {type(model).__name__} to ONNX: {error}") from error
    boosting.exact_thresholds(model, graph)
    # One import per domain, the default one included: skl2onnx may list "" twice for a tree ensemble, which
    # onnxruntime loads but its quantizer (edge bundles) refuses, and Max and Log below need it.
    versions = {"": OPSET}
    for entry in graph.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del graph.opset_import[:]
    graph.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in sorted(versions.items()))
    if task == "regression":
        graph.graph.node.append(helper.make_node("Identity", [graph.graph.output[0].name], [VALUE]))
        del graph.graph.output[:]
        graph.graph.output.append(helper.make_tensor_value_info(VALUE, TensorProto.FLOAT, [None, 1]))
    else:
        probabilities = next(o.name for o in graph.graph.output if "prob" in o.name)
        graph.graph.initializer.append(helper.make_tensor("lathe_floor", TensorProto.FLOAT, [], [FLOOR]))
        graph.graph.node.extend(
            [
                helper.make_node("Max", [probabilities, "lathe_floor"], ["lathe_clipped"]),
                helper.make_node("Log", ["lathe_clipped"], [OUTPUT]),
            ]
        )
        del graph.graph.output[:]
        shape = [None, len(model.classes_)]
        graph.graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, shape))
    onnx.checker.check_model(graph)
    path.write_bytes(graph.SerializeToString())
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parity(
    model: Any,
    path: Path,
    x: np.ndarray,
    atol: float = 1e-5,
    framework: str = "sklearn",
    task: str = "classification",
    encoding: Any = None,
) -> dict[str, float | int]:
    """Max absolute probability difference, and agreement on the class wherever scikit-learn's top two differ;
    a regressor's values, relative to their spread (float32 thresholds against the framework's own)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if task == "regression":
        expected = model.predict(x).reshape(-1, 1)
        values = session.run([output_name(task)], feeds(x, encoding))[0]
        spread = float(expected.std()) or 1.0
        return verdict(
            NAMES[framework], "value / spread", float(np.abs(values - expected).max()) / spread, 1.0, len(x), atol * 10
        )
    expected = model.predict_proba(x)
    logits = session.run([OUTPUT], feeds(x, encoding))[0]
    actual = np.exp(logits - logits.max(axis=1, keepdims=True))
    actual /= actual.sum(axis=1, keepdims=True)
    diff = float(np.abs(actual - expected).max())
    top = np.sort(expected, axis=1)
    clear = top[:, -1] - top[:, -2] > 2 * atol if expected.shape[1] > 1 else np.ones(len(x), dtype=bool)
    agreement = float((actual.argmax(1) == expected.argmax(1))[clear].mean()) if clear.any() else 1.0
    return verdict(NAMES[framework], "probability", diff, agreement, len(x), atol)


def run(
    data: Any,
    classes: int,
    model_type: str,
    parameters: dict[str, Any],
    seed: int,
    model_path: str,
    onnx_path: str,
    task: str = "classification",
) -> dict[str, Any]:
    """Fit on the train split, save the estimator (joblib) and model.onnx; the train step's summary."""
    import joblib

    framework, name = split(model_type) or ("sklearn", model_type)
    started = time.monotonic()
    x_train = np.concatenate([data["x_train"], data["x_val"]])  # no early stopping here: validation rows train too
    y_train = np.concatenate([data["y_train"], data["y_val"]])
    model = fit(framework, name, parameters, seed, x_train, y_train, classes, task)
    seconds = time.monotonic() - started
    joblib.dump(model, model_path)
    export(model, int(x_train.shape[1]), Path(onnx_path), task)
    encoding = encodings.load(data)
    sha256 = encodings.wrap_file(Path(onnx_path), encoding)  # categorical columns: one-hot inside the graph
    checked = parity(model, Path(onnx_path), data["x_test"], framework=framework, task=task, encoding=encoding)
    params = {k: v for k, v in model.get_params().items() if isinstance(v, SCALARS)}
    return {
        "device": "cpu",
        "parity": checked,
        "onnxSha256": sha256,
        "params": {"estimator": name, **params},
        "seconds": round(seconds, 3),
        "history": [],
        "framework": {"name": NAMES[framework], "version": version(framework)},
        "cuda": None,
    }


def version(framework: str) -> str:
    if framework != "sklearn":
        return boosting.version(framework)
    import sklearn

    return str(sklearn.__version__)

"""Step: metrics of the ONNX model on the test split, computed with onnxruntime (no torch needed).

Beside the metrics, ``predicted`` counts the test rows predicted as each class (by class
index): the reference a DriftMonitor compares live predictions with; a regressor's reference
is ``predictedValues``, the profile of its values on the test rows (quantiles, as a Dataset
profile keeps for a numeric column)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from . import splitfile
from .encoding import load
from .export import output_name, predict
from .metrics import metrics, regression
from .profile import LEVELS, numeric


def run(splits_path: str, onnx_path: str, task: str = "classification") -> dict[str, Any]:
    """A regressor (``task``): RMSE, MAE and R2 of its values, and no class counts."""
    data = splitfile.load(splits_path)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    scores = predict(session, output_name(task), data["x_test"], load(data))  # the served graph, on raw values
    if task == "regression":
        values = scores
        reference = {"quantileLevels": LEVELS.tolist(), **numeric(values.reshape(-1).astype("float64"))}
        return {**regression(values, data["y_test"]), "predicted": {}, "predictedValues": reference}
    logits = scores
    classes = [str(i) for i in range(logits.shape[1])]
    counts = np.bincount(logits.argmax(axis=1), minlength=logits.shape[1])
    return {**metrics(logits, data["y_test"], classes), "predicted": {c: int(n) for c, n in zip(classes, counts)}}

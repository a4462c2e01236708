"""Step: metrics of the ONNX model on the test split, computed with onnxruntime (no torch needed).

Beside the metrics, ``predicted`` counts the test rows predicted as each class (by class
index): the reference a DriftMonitor compares live predictions with."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from .export import INPUT, OUTPUT, VALUE
from .metrics import metrics, regression


def run(splits_path: str, onnx_path: str, task: str = "classification") -> dict[str, Any]:
    """A regressor (``task``): RMSE, MAE and R2 of its values, and no class counts."""
    data = np.load(splits_path)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    if task == "regression":
        values = session.run([VALUE], {INPUT: data["x_test"].astype("float32")})[0]
        return {**regression(values, data["y_test"]), "predicted": {}}
    logits = session.run([OUTPUT], {INPUT: data["x_test"].astype("float32")})[0]
    classes = [str(i) for i in range(logits.shape[1])]
    counts = np.bincount(logits.argmax(axis=1), minlength=logits.shape[1])
    return {**metrics(logits, data["y_test"], classes), "predicted": {c: int(n) for c, n in zip(classes, counts)}}

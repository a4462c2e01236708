"""Step: metrics of the ONNX model on the test split, computed with onnxruntime (no torch needed)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .export import INPUT, OUTPUT
from .metrics import metrics


def run(splits_path: str, onnx_path: str) -> dict[str, float]:
    data = np.load(splits_path)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    logits = session.run([OUTPUT], {INPUT: data["x_test"].astype("float32")})[0]
    classes = [str(i) for i in range(logits.shape[1])]
    return metrics(logits, data["y_test"], classes)

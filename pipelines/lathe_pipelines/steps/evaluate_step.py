"""Step: metrics on the test split, ONNX export and onnxruntime parity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import reports
from .evaluate import metrics
from .export import export, parity
from .train_step import load


def run(splits_path: str, model_path: str, onnx_path: str, report_key: str = "") -> dict[str, Any]:
    data = np.load(splits_path)
    model = load(model_path)
    classes = [str(i) for i in range(model.net[-1].out_features)]
    with torch.no_grad():
        logits = model(torch.tensor(data["x_test"])).numpy()
    with reports.failures(report_key, "evaluate-and-export"):
        sha256 = export(model, int(data["x_test"].shape[1]), Path(onnx_path))
        checked = parity(model, Path(onnx_path), data["x_test"])
    return {"metrics": metrics(logits, data["y_test"], classes), "parity": checked, "sha256": sha256}

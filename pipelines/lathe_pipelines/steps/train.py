"""Step: train on the split, save the model (model.pt: weights plus architecture; a scikit-learn estimator:
joblib), export model.onnx and check parity. ``model_type``: mlp, logistic, or
<framework>:<classifier> (sklearn, xgboost, lightgbm)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import encoding as encodings
from . import reports, sklearn_model, splitfile
from .classifier import Classifier, train
from .export import export, parity


def load(model_path: str) -> Classifier:
    saved = torch.load(model_path, map_location="cpu", weights_only=True)
    arch = json.loads(saved["arch"])
    scale = tuple(arch["scale"]) if arch.get("scale") else None
    model = Classifier(
        np.zeros(arch["features"]), np.ones(arch["features"]), arch["hidden"], arch["classes"], arch["dropout"], scale
    )
    model.load_state_dict(saved["state"])
    return model.eval()


def run(
    splits_path: str,
    model_type: str,
    hyperparameters: dict[str, Any],
    seed: int,
    model_path: str,
    onnx_path: str,
    report_key: str = "",
    task: str = "classification",
) -> str:
    data = splitfile.load(splits_path)
    regression = task == "regression"
    classes = 0 if regression else int(max(data["y_train"].max(), data["y_val"].max(), data["y_test"].max()) + 1)
    if sklearn_model.split(model_type):
        with reports.failures(report_key, "train"):
            parameters = sklearn_model.parameters(hyperparameters)
            summary = sklearn_model.run(data, classes, model_type, parameters, seed, model_path, onnx_path, task)
        return json.dumps(summary)
    with reports.failures(report_key, "train"):
        trained = train(
            data["x_train"],
            data["y_train"],
            data["x_val"],
            data["y_val"],
            classes,
            model_type,
            hyperparameters,
            seed,
            on_epoch=reports.progress(report_key),
            task=task,
        )
    arch = {
        "features": int(data["x_train"].shape[1]),
        "hidden": list(trained.params["hidden"]),
        "classes": 1 if regression else classes,
        "dropout": float(trained.params["dropout"]),
        "scale": [float(v) for v in trained.model.scale] if regression else None,
    }
    torch.save({"state": trained.model.state_dict(), "arch": json.dumps(arch)}, model_path)
    with reports.failures(report_key, "train-model"):
        export(trained.model, arch["features"], Path(onnx_path))
        encoding = encodings.load(data)
        sha256 = encodings.wrap_file(Path(onnx_path), encoding)  # categorical columns: one-hot inside the graph
        checked = parity(trained.model, Path(onnx_path), data["x_test"], encoding=encoding)
    return json.dumps(
        {
            "device": trained.device,
            "parity": checked,
            "onnxSha256": sha256,
            "params": trained.params,
            "seconds": round(trained.seconds, 3),
            "history": trained.history,
            "torch": torch.__version__,
            "cuda": torch.version.cuda if trained.device == "cuda" else None,
        }
    )

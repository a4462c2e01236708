"""Classification metrics (accuracy, macro F1, per-class recall, cross-entropy loss) and regression metrics
(RMSE, MAE, R2: lower is better for the first two, which gates know: ``LOWER_IS_BETTER``)."""

from __future__ import annotations

import numpy as np

LOWER_IS_BETTER = ("loss", "rmse", "mae")


def regression(values: np.ndarray, y: np.ndarray) -> dict[str, float]:
    errors = values.reshape(-1).astype("float64") - y.astype("float64")
    spread = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((errors**2).mean())),
        "mae": float(np.abs(errors).mean()),
        "r2": 1.0 - float((errors**2).sum()) / spread if spread else 0.0,
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def metrics(logits: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, float]:
    predicted = logits.argmax(axis=1)
    probabilities = softmax(logits.astype("float64"))
    result = {
        "accuracy": float((predicted == y).mean()),
        "loss": float(-np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-12, None)).mean()),
    }
    f1s = []
    for index, name in enumerate(classes):
        tp = int(((predicted == index) & (y == index)).sum())
        fp = int(((predicted == index) & (y != index)).sum())
        fn = int(((predicted != index) & (y == index)).sum())
        recall = tp / (tp + fn) if tp + fn else 0.0
        precision = tp / (tp + fp) if tp + fp else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        result[f"recall_{name}"] = recall
    result["macro_f1"] = float(np.mean(f1s))
    return result

"""Classification metrics: accuracy, macro F1, per-class recall, cross-entropy loss."""

from __future__ import annotations

import numpy as np


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

"""Step: apply the gates against the baseline and register the model with its full lineage."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

from lathe_core.patience import patiently
from lathe_core.registry import ModelRegistry
from lathe_core.stores import open_configured_store

from . import reports
from .gate import describe, evaluate

LIBRARIES = (
    "torch",
    "scikit-learn",
    "skl2onnx",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
    "onnxmltools",
    "onnx",
    "onnxruntime",
    "numpy",
    "pandas",
    "kfp",
    "great-expectations",
)


def versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def whole_numbers(value: Any) -> Any:
    """kfp passes dict parameters as protobuf Structs, where 42 arrives as 42.0: undo that for the card."""
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def prediction_reference(predicted: dict[str, int], classes: list[Any]) -> dict[str, int]:
    """Counts by class label (what the server answers), from counts by class index."""
    return {str(classes[int(i)]) if int(i) < len(classes) else str(i): int(n) for i, n in predicted.items()}


def run(
    onnx_path: str,
    evaluation: str,
    training: str,
    columns: str,
    gates: list[dict[str, Any]],
    namespace: str,
    model_name: str,
    baseline_version: int,
    lineage: dict[str, Any],
    report_key: str = "",
) -> str:
    """``baseline_version`` 0 means the promoted version, if any."""
    registry = ModelRegistry(open_configured_store(), namespace, model_name)
    measured, train_summary, meta = json.loads(evaluation), json.loads(training), json.loads(columns)
    predicted = measured.pop("predicted", {})  # test rows per predicted class index: drift's reference
    values = measured.pop("predictedValues", None)  # a regressor's: the profile of its values on the test rows
    baseline = baseline_version or patiently(registry.promoted, "read the promoted version")
    baseline_metrics = (  # None: nothing to regress from
        patiently(lambda: registry.card(baseline), "read the baseline's card").get("metrics") if baseline else None
    )
    gate_results = evaluate(gates, measured, baseline_metrics)
    outcome: dict[str, Any] = {
        "gates": gate_results,
        "passed": all(g["passed"] for g in gate_results),
        "metrics": measured,
        "baseline": baseline,
        "device": train_summary["device"],
    }
    if not outcome["passed"]:
        reports.write(
            report_key,
            {
                **outcome,
                "outcome": "Failed",
                "reason": "GateFailed",
                "message": "; ".join(describe(g) for g in gate_results if not g["passed"]),
            },
        )
        return json.dumps(outcome)
    card = {
        "name": model_name,
        "task": meta.get("task", "classification"),
        "metrics": measured,
        "gates": gate_results,
        "parity": train_summary["parity"],
        "baselineVersion": baseline,
        "training": {
            k: train_summary.get(k)
            for k in ("device", "params", "seconds", "history", "cuda", "framework", "features", "trainerMetrics")
            if k in train_summary
        },
        "columns": meta,
        "reference": {
            "predictions": prediction_reference(predicted, meta.get("classes") or []),
            **({"values": values} if values else {}),
        },
        "libraries": versions(),
        **whole_numbers(lineage),  # dataset, run, code, image, pipeline hash, seed
    }
    onnx = Path(onnx_path).read_bytes()
    version, sha256 = patiently(lambda: registry.register(onnx, card), "register the model")  # idempotent per run
    outcome.update(version=version, sha256=sha256, uri=registry.store_uri(version))
    succeeded = {
        **outcome,
        "outcome": "Succeeded",
        "reason": "Registered",
        "message": f"Registered {model_name} version {version}",
    }
    patiently(lambda: reports.write(report_key, succeeded), "write the run's report")
    return json.dumps(outcome)

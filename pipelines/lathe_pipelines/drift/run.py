"""One drift check run (``lathe drift``): find the reference, read the current data, test, report.

The reference is the profile of the Dataset version the served model was trained on
(through the model card's lineage), or a Dataset version named in the request. The
report (JSON, and a self-contained HTML page) goes to ``reports/<ns>/<monitor>/``; the
operator reads the JSON and exports it to Prometheus.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store import ObjectNotFound, ObjectStore, get_json

from . import html, statistics, window
from .check import THRESHOLDS, Column, StatTest, check
from .reference import Categorical, Numeric, ProfileUnsupported, column

HISTORY = 20  # earlier checks drawn in the report


class CheckFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _reference(store: ObjectStore, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(profile, model card or None)."""
    namespace, card = request["namespace"], None
    ref = request.get("reference")
    model = (request.get("source") or {}).get("model")
    if model:
        try:
            card = ModelRegistry(store, namespace, model["name"]).card(int(model["version"]))
        except ObjectNotFound as error:
            raise CheckFailed(
                "ModelNotFound", f"model {model['name']} version {model['version']} is not registered"
            ) from error
    if not ref:
        lineage = (card or {}).get("dataset") or {}
        if not lineage.get("name") or not lineage.get("version"):
            raise CheckFailed("ReferenceMissing", "the model card names no training Dataset version")
        ref = {"name": lineage["name"], "version": lineage["version"]}
    if not ref.get("version"):
        raise CheckFailed("ReferenceMissing", f"Dataset {ref['name']} has no Ready version to compare with")
    profile = get_json(store, layout.dataset_file(namespace, ref["name"], ref["version"], layout.PROFILE))
    if profile is None:
        raise CheckFailed("ReferenceMissing", f"Dataset {ref['name']} has no profile for version {ref['version']}")
    return {**profile, "dataset": ref}, card


def _current(store: ObjectStore, request: dict[str, Any], card: dict[str, Any] | None) -> window.Window:
    source = request["source"]
    if source["type"] == "dataset":
        versions = DatasetVersions(store, request["namespace"], source["name"])
        version = source.get("version")  # the operator pins the Dataset's current version when spec does not
        if version is None or not versions.exists(version):
            raise CheckFailed("DatasetNotFound", f"Dataset {source['name']} has no version {version or ''}".strip())
        return window.from_dataset(store, request["namespace"], source["name"], version)
    span = request["window"]
    table = window.read_logs(
        store,
        request["namespace"],
        source["deployment"],
        datetime.fromisoformat(span["start"]),
        datetime.fromisoformat(span["end"]),
    )
    columns = (card or {}).get("columns") or {}
    return window.from_logs(table, list(columns.get("features") or []), list(columns.get("categorical") or []))


def _tests(request: dict[str, Any]) -> tuple[dict[str, StatTest], dict[str, StatTest]]:
    tests = request.get("tests") or {}
    per_kind = {
        kind: StatTest(tests[kind], tests.get("threshold") or THRESHOLDS[tests[kind]])
        for kind in ("numeric", "categorical")
        if tests.get(kind) and tests[kind] != "auto"
    }
    per_column = {
        name: StatTest(t["test"], t.get("threshold") or THRESHOLDS[t["test"]])
        for name, t in (tests.get("columns") or {}).items()
    }
    return per_column, per_kind


def _prediction_drift(card: dict[str, Any] | None, current: window.Window) -> dict[str, Any] | None:
    """Live predictions against the test split's: class shares, or a regressor's values (Wasserstein, as for
    a numeric column)."""
    reference = (card or {}).get("reference") or {}
    if current.predictions.size == 0:
        return None
    if _regressor(card) and reference.get("values"):
        values = reference["values"]
        ref = column(values, np.asarray(values["quantileLevels"], dtype="float64"))
        live = np.asarray(pd.to_numeric(pd.Series(current.predictions), errors="coerce"), dtype="float64")
        if not isinstance(ref, Numeric) or not np.isfinite(live).any():
            return None
        score = statistics.wasserstein(ref, live[np.isfinite(live)], THRESHOLDS["wasserstein"])
    elif reference.get("predictions") and not _regressor(card):
        score = statistics.share_change(Categorical(reference["predictions"]), current.predictions)
    else:
        return None
    return {"test": score.test, "statistic": score.statistic, "threshold": score.threshold, "drifted": score.drifted}


def _regressor(card: dict[str, Any] | None) -> bool:
    return (card or {}).get("task") == "regression"


def _column(c: Column) -> dict[str, Any]:
    return {
        "name": c.name,
        "kind": c.kind,
        "status": c.status,
        "test": c.test,
        "statistic": c.statistic,
        "pValue": c.p_value,
        "threshold": c.threshold,
        "drifted": c.drifted,
        "samples": c.samples,
        "missing": c.missing,
        "infinite": c.infinite,
    }


def run(store: ObjectStore, request: dict[str, Any]) -> dict[str, Any]:
    """The check's report (``outcome`` Succeeded, or Failed with a reason); the caller writes it."""
    try:
        profile, card = _reference(store, request)
        current = _current(store, request, card)
        target = (profile.get("target") or {}).get("name")
        if request["source"]["type"] == "logs" and target:  # requests carry inputs only: the label is no input
            profile = {**profile, "columns": {k: v for k, v in profile["columns"].items() if k != target}}
        per_column, per_kind = _tests(request)
        unknown = {t.name for t in [*per_column.values(), *per_kind.values()]} - set(THRESHOLDS)
        if unknown:
            raise CheckFailed("InvalidTest", f"unknown test {sorted(unknown)}")
        result = check(
            profile,
            current.columns,
            per_column=per_column,
            per_kind=per_kind,
            drift_share=float(request.get("driftShare", 0.5)),
            correction=request.get("correction"),
        )
    except ProfileUnsupported as error:
        return {"outcome": "Failed", "reason": error.reason, "message": str(error)}
    except CheckFailed as error:
        return {"outcome": "Failed", "reason": error.reason, "message": str(error)}
    except ValueError as error:
        return {"outcome": "Failed", "reason": "InvalidTest", "message": str(error)}
    minimum = int((request.get("window") or {}).get("minSamples", 1))
    enough = current.samples >= minimum
    accuracy = request.get("accuracy") or {}
    labelled_enough = current.labelled >= int(accuracy.get("minLabelled", 1))
    regressor = _regressor(card)  # its answers are values: a mean absolute error, not an accuracy
    live = current.accuracy if labelled_enough and not regressor else None
    live_mae = current.mean_absolute_error if labelled_enough and regressor else None
    columns = sorted(result.columns, key=lambda c: (not c.drifted, c.status != "Checked", -(c.statistic or 0)))
    report: dict[str, Any] = {
        "outcome": "Succeeded",
        "verdict": ("Drift" if result.drifted else "NoDrift") if enough else "InsufficientData",
        "driftShare": round(result.share, 6) if enough else None,
        "samples": current.samples,
        "minSamples": minimum,
        "labelled": current.labelled,
        "liveAccuracy": live,
        "liveMae": live_mae,
        "accuracyBelow": live is not None and accuracy.get("min") is not None and live < float(accuracy["min"]),
        "columns": [_column(c) for c in columns],
        "prediction": _prediction_drift(card, current) if enough else None,
        "reference": profile["dataset"],
        "window": request.get("window"),
        "source": request["source"],
        "unnamedFeatures": current.unnamed,
    }
    report["message"] = _message(report)
    report["html"] = html.render(request, report, _history(store, request), profile, current)
    return report


def _message(report: dict[str, Any]) -> str:
    if report["verdict"] == "InsufficientData":
        return f"{report['samples']} samples in the window, fewer than {report['minSamples']}"
    drifted = [c["name"] for c in report["columns"] if c["drifted"]]
    checked = sum(c["status"] == "Checked" for c in report["columns"])
    head = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
    text = f"{len(drifted)} of {checked} columns drifted" + (f" ({head})" if drifted else "")
    if report.get("liveAccuracy") is not None:
        text += f"; live accuracy {report['liveAccuracy']:.3f} on {report['labelled']} labelled samples"
    if report.get("liveMae") is not None:
        text += f"; live MAE {report['liveMae']:.4g} on {report['labelled']} labelled samples"
    return text


def _history(store: ObjectStore, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The shares of earlier checks, oldest first, for the report's trend."""
    keys = [
        k for k in store.list(layout.drift_reports(request["namespace"], request["monitor"])) if k.endswith(".json")
    ]
    found = []
    for key in keys:
        body = get_json(store, key) or {}
        if body.get("outcome") == "Succeeded":
            found.append(
                {"time": body.get("finishedAt"), "share": body.get("driftShare"), "verdict": body.get("verdict")}
            )
    return sorted(found, key=lambda h: str(h["time"]))[-HISTORY:]

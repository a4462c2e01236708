"""A whole drift check on a local store: the served model's reference, logged traffic, feedback, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store import dumps
from lathe_core.store_local import LocalStore
from lathe_pipelines.drift import run as drift
from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps import schema
from lathe_pipelines.steps.profile import profile
from lathe_serving.logsink import LogSink

VERSION = "sha256:" + "d" * 64
END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FRAME = digits()
FEATURES = [c for c in FRAME.columns if c != "label"]


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path)
    reference = profile(FRAME, schema.infer(FRAME), "label")
    DatasetVersions(store, "ml", "digits").publish(VERSION, {layout.PROFILE: dumps(reference)}, {"version": VERSION})
    card = {
        "run": {"id": "r1"},
        "dataset": {"name": "digits", "version": VERSION},
        "columns": {"features": FEATURES, "classes": [str(i) for i in range(10)]},
        "reference": {"predictions": {str(i): int((FRAME["label"] == i).sum()) for i in range(10)}},
    }
    ModelRegistry(store, "ml", "clf").register(b"onnx", card)
    return store


def log(store: LocalStore, rows: np.ndarray, predictions: list[str], truths: list[str | None]) -> None:
    sink = LogSink(store.put, "ml", "web")
    for i, (row, label, truth) in enumerate(zip(rows, predictions, truths)):
        when = END - timedelta(minutes=30) + timedelta(milliseconds=i)
        sink.add(
            {
                "kind": "prediction",
                "request_id": f"r{i}",
                "answer": f"tag-r{i}",  # the server's signature of its answer, which bound feedback carries
                "version": 1,
                "shadow": False,
                "features": row.tolist(),
                "prediction": label,
                "time": when,
            }
        )
        sink.add(
            {
                "kind": "prediction",
                "request_id": f"s{i}",
                "version": 2,
                "shadow": True,
                "features": (row * 0).tolist(),
                "prediction": "0",
                "time": when,
            }
        )  # shadow: never counted
        if truth is not None:
            sink.add({"kind": "feedback", "request_id": f"r{i}", "answer": f"tag-r{i}", "truth": truth, "time": when})
    sink.write(sink.take())


def request(**extra: Any) -> dict[str, Any]:
    return {
        "namespace": "ml",
        "monitor": "watch",
        "source": {"type": "logs", "deployment": "web", "model": {"name": "clf", "version": 1}},
        "window": {"start": (END - timedelta(hours=1)).isoformat(), "end": END.isoformat(), "minSamples": 500},
        "accuracy": {"min": 0.9, "minLabelled": 100},
        **extra,
    }


def test_unshifted_traffic_is_no_drift_and_live_accuracy_joins_feedback(store: LocalStore) -> None:
    sample = FRAME.sample(1500, random_state=1)
    labels = sample["label"].astype(str).tolist()
    truths = [t if i % 3 == 0 else None for i, t in enumerate(labels)]  # a third labelled
    predictions = [t if i % 10 else "7" for i, t in enumerate(labels)]  # about 90% right
    log(store, sample[FEATURES].to_numpy(dtype="float32"), predictions, truths)
    report = drift.run(store, request())
    assert report["outcome"] == "Succeeded" and report["verdict"] == "NoDrift" and report["samples"] == 1500
    assert report["labelled"] == 500 and report["liveAccuracy"] == pytest.approx(
        np.mean([p == t for p, t in zip(predictions, truths) if t is not None])
    )
    assert report["accuracyBelow"] is (report["liveAccuracy"] < 0.9)
    assert report["prediction"] is not None and "<svg" in report["html"] and "NoDrift" in report["html"]


def test_darker_digits_drift_and_name_their_columns(store: LocalStore) -> None:
    sample = FRAME.sample(1500, random_state=2)
    darker = (sample[FEATURES].to_numpy(dtype="float32") * 0.5).round()
    log(store, darker, ["1"] * 1500, [None] * 1500)
    report = drift.run(store, request())
    assert report["verdict"] == "Drift" and report["driftShare"] >= 0.5
    top = report["columns"][0]
    assert top["drifted"] and top["name"] in FEATURES and top["test"] == "wasserstein"
    assert {c["name"] for c in report["columns"]} == set(FEATURES)  # the label is no input: not compared
    assert report["prediction"]["drifted"] and report["liveAccuracy"] is None  # no feedback: no accuracy


def test_too_few_samples_and_missing_references_say_why(store: LocalStore) -> None:
    log(store, FRAME[FEATURES].to_numpy(dtype="float32")[:20], ["1"] * 20, [None] * 20)
    assert drift.run(store, request())["verdict"] == "InsufficientData"
    other = request(source={"type": "logs", "deployment": "web", "model": {"name": "clf", "version": 9}})
    assert drift.run(store, other)["reason"] == "ModelNotFound"
    store.delete(layout.dataset_file("ml", "digits", VERSION, layout.PROFILE))
    assert drift.run(store, request())["reason"] == "ReferenceMissing"


def test_an_old_profile_is_refused_and_datasets_compare_by_version(store: LocalStore) -> None:
    versions = DatasetVersions(store, "ml", "digits")
    shifted = FRAME.assign(pixel_3_3=FRAME["pixel_3_3"] + 3)
    newer = "sha256:" + "e" * 64
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(shifted, preserve_index=False), buffer)
    versions.publish(newer, {layout.DATA: buffer.getvalue()}, {"version": newer})
    by_version = request(
        source={"type": "dataset", "name": "digits", "version": newer}, reference={"name": "digits", "version": VERSION}
    )
    unpinned = drift.run(store, request(source={"type": "dataset", "name": "digits"}, reference={"name": "digits"}))
    assert unpinned["reason"] == "ReferenceMissing"  # the operator pins versions; none at all is a reason
    report = drift.run(store, by_version)
    found = {c["name"]: c for c in report["columns"]}
    assert report["outcome"] == "Succeeded" and found["pixel_3_3"]["drifted"] and not found["pixel_0_1"]["drifted"]
    assert found["label"]["kind"] == "numeric" and not found["label"]["drifted"]
    store.put(layout.dataset_file("ml", "digits", VERSION, layout.PROFILE), dumps({"columns": {}}))
    assert drift.run(store, by_version)["reason"] == "ProfileOutdated"

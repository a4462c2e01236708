"""A retrain's data from logged traffic: labelled served rows only, typed like the training data, merged or alone."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store_local import LocalStore
from lathe_pipelines.drift import harvest

from .test_drift_run import END, FEATURES, FRAME, VERSION, log


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path)
    table = pa.Table.from_pandas(FRAME, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    DatasetVersions(store, "ml", "digits").publish(VERSION, {layout.DATA: sink.getvalue()}, {"version": VERSION})
    card = {
        "run": {"id": "r1"},
        "dataset": {"name": "digits", "version": VERSION},
        "columns": {"features": FEATURES, "target": "label", "classes": [str(i) for i in range(10)]},
    }
    ModelRegistry(store, "ml", "clf").register(b"onnx", card)
    return store


def request(**extra: Any) -> dict[str, Any]:
    return {
        "namespace": "ml",
        "monitor": "watch",
        "run": "watch-retrain-1-data",
        "deployment": "web",
        "model": {"name": "clf", "version": 1},
        "window": {"start": (END - timedelta(hours=1)).isoformat(), "end": END.isoformat()},
        "merge": "append",
        "minLabelled": 10,
        **extra,
    }


def darker(n: int) -> tuple[np.ndarray, list[str]]:
    rows = (FRAME[FEATURES].to_numpy(dtype="float32")[:n] * 0.5).round()
    return rows, FRAME["label"].astype(str).tolist()[:n]


def written(store: LocalStore) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get(layout.retrain_data("ml", "watch", "watch-retrain-1-data"))))


def test_labelled_served_rows_are_appended_to_the_training_data_in_its_types(store: LocalStore) -> None:
    rows, truths = darker(60)
    labelled = [t if i % 2 == 0 else None for i, t in enumerate(truths)]  # feedback for half of them
    log(store, rows, ["0"] * 60, labelled)
    report = harvest.run(store, request())
    assert report["outcome"] == "Succeeded", report
    assert (report["labelled"], report["rows"], report["base"]["rows"]) == (30, len(FRAME) + 30, len(FRAME))
    table = written(store)
    assert table.schema == pa.Table.from_pandas(FRAME, preserve_index=False).schema  # 3.0 became 3, "7" became 7
    tail = table.slice(len(FRAME)).to_pandas()
    assert tail["label"].tolist() == [int(t) for t in truths[::2]]  # the truth, never the model's answer
    assert np.array_equal(tail[FEATURES].to_numpy(), rows[::2])
    assert report["uri"] == store.uri(layout.retrain_data("ml", "watch", "watch-retrain-1-data"))


def test_replace_keeps_the_traffic_alone(store: LocalStore) -> None:
    rows, truths = darker(20)
    log(store, rows, ["0"] * 20, truths)
    report = harvest.run(store, request(merge="replace"))
    assert report["outcome"] == "Succeeded" and report["rows"] == 20 and written(store).num_rows == 20


def test_values_the_training_type_cannot_hold_widen_the_column(store: LocalStore) -> None:
    rows, truths = darker(20)
    log(store, rows + 0.25, ["0"] * 20, truths)
    assert harvest.run(store, request())["outcome"] == "Succeeded"
    table = written(store)
    assert pa.types.is_floating(table.schema.field("pixel_0_2").type) and table.num_rows == len(FRAME) + 20


def test_too_few_labels_and_missing_models_are_refused_with_a_reason(store: LocalStore) -> None:
    rows, truths = darker(20)
    log(store, rows, ["0"] * 20, [None] * 15 + truths[15:])
    assert harvest.run(store, request())["reason"] == "InsufficientLabels"
    assert harvest.run(store, request(model={"name": "clf", "version": 9}))["reason"] == "ModelNotFound"
    assert not store.exists(layout.retrain_data("ml", "watch", "watch-retrain-1-data"))

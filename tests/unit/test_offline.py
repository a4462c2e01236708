"""Batch scoring with plain values: a Dataset version bigger than one request's row limit, in one chunk."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store_local import LocalStore
from lathe_pipelines import offline
from lathe_pipelines.sample_data import digits
from lathe_serving.model import MAX_ROWS
from tests.unit.test_serving_model import model_dir  # noqa: F401  (fixture: a tiny trained model)


def test_scores_more_rows_than_one_request_may_carry(model_dir: Path, tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    frame = pd.concat([digits()] * 7, ignore_index=True)  # 12,579 rows
    assert len(frame) > MAX_ROWS
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    version = "sha256:" + hashlib.sha256(buffer.getvalue()).hexdigest()
    DatasetVersions(store, "ml", "digits").publish(version, {"data.parquet": buffer.getvalue()}, {"version": version})
    card = json.loads((model_dir / "model.json").read_text())
    features = [c for c in frame.columns if c != "label"]
    ModelRegistry(store, "ml", "clf").register(
        (model_dir / "model.onnx").read_bytes(),
        {"name": "clf", "run": {"id": "r1"}, "columns": {"features": features, "classes": card["columns"]["classes"]}},
    )

    report = offline.score(store, "ml", "batch", "run-1", "clf", 1, "digits", version, 65536)
    assert report["outcome"] == "Succeeded" and report["rows"] == len(frame)
    manifest = json.loads(store.get("predictions/ml/batch/run-1/manifest.json"))
    table = pq.read_table(io.BytesIO(store.get(manifest["parts"][0])))
    got = np.array(table.column("probabilities").to_pylist(), dtype=np.float32)
    logits = ort.InferenceSession(str(model_dir / "model.onnx")).run(
        None, {"input": frame[features].to_numpy(dtype=np.float32)}
    )[0]
    assert len(manifest["parts"]) == 1 and np.array_equal(got.argmax(1), logits.argmax(1))

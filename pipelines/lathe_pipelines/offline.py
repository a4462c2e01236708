"""What batch and edge ModelDeployments run: score a Dataset version, or publish an edge bundle.

    predictions/<ns>/<deployment>/<run>/part-<n>.parquet, manifest.json   # batch; manifest last
    bundles/<ns>/<deployment>/<run>/bundle.tar.gz                          # edge
    deployments/<ns>/<deployment>/runs/<run>.json, <run>.progress.json     # the outcome (lathe_core.layout)

Both use the serving code (``lathe_serving.model.LatheModel``), so batch predictions are
the ones the online server would give.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lathe_core import layout
from lathe_core.clock import stamp
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import CARD, ONNX, ModelRegistry
from lathe_core.store import ObjectStore, dumps
from lathe_serving.model import LatheModel, session_options

RUNNER = Path(__file__).with_name("edge_runner.py")


class OfflineFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _model(store: ObjectStore, namespace: str, name: str, version: int, folder: Path, recorded: str) -> LatheModel:
    registry = ModelRegistry(store, namespace, name)
    try:
        onnx = registry.onnx(version, recorded)
    except ValueError as error:
        raise OfflineFailed("ChecksumMismatch", str(error)) from error
    (folder / ONNX).write_bytes(onnx)
    (folder / CARD).write_bytes(store.get(registry.key(version, CARD)))
    model = LatheModel(str(folder), threads=None)
    model.load()
    return model


def score(
    store: ObjectStore,
    namespace: str,
    deployment: str,
    run: str,
    model_name: str,
    model_version: int,
    dataset: str,
    dataset_version: str,
    chunk_rows: int,
    recorded: str = "",
) -> dict[str, Any]:
    """Predictions for every row of a Dataset version, in chunks; the manifest is written last."""
    versions = DatasetVersions(store, namespace, dataset)
    if not versions.exists(dataset_version):
        raise OfflineFailed("DatasetNotFound", f"Dataset {dataset} has no version {dataset_version}")
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(store, namespace, model_name, model_version, Path(tmp), recorded)
        features = model.card.get("columns", {}).get("features")
        table = pq.read_table(io.BytesIO(versions.data(dataset_version)), use_threads=False)
        missing = [f for f in [*(features or []), *model.categorical] if f not in table.column_names]
        if missing:
            raise OfflineFailed("SchemaMismatch", f"Dataset {dataset} lacks the model's features {missing[:10]}")
        names = model.class_names()
        parts, rows, size = [], 0, 0
        for start in range(0, max(table.num_rows, 1), chunk_rows):
            chunk = table.slice(start, chunk_rows)
            if chunk.num_rows == 0:
                break
            probabilities = model.infer(model.check(_inputs(chunk, model, features or []), max_rows=None))
            rows_of = pa.array(np.arange(start, start + chunk.num_rows), pa.int64())
            answers = (
                {"value": pa.array(probabilities[:, 0].astype(np.float32), pa.float32())}
                if model.regression
                else {
                    "prediction": pa.array(model.labels(probabilities), pa.string()),
                    "probabilities": pa.array(list(probabilities.astype(np.float32)), pa.list_(pa.float32())),
                }
            )
            out = pa.table(
                {"row": rows_of, **answers},
                metadata={
                    "lathe.dataset_version": dataset_version,
                    "lathe.model": model_name,
                    "lathe.model_version": str(model_version),
                },
            )
            buffer = io.BytesIO()
            pq.write_table(out, buffer, compression="zstd")
            key = layout.predictions_part(namespace, deployment, run, len(parts))
            store.put(key, buffer.getvalue())
            parts.append(key)
            rows += chunk.num_rows
            size += buffer.tell()
            store.put(layout.deployment_progress(namespace, deployment, run), dumps({"rows": rows}))
        manifest = {
            "datasetVersion": dataset_version,
            "dataset": dataset,
            "model": model_name,
            "modelVersion": model_version,
            "rows": rows,
            "parts": parts,
            "classes": names,
            "task": model.card.get("task", "classification"),
        }
        store.put(layout.predictions_manifest(namespace, deployment, run), dumps(manifest))
    return {
        "outcome": "Succeeded",
        "uri": store.uri(layout.predictions_prefix(namespace, deployment, run)),
        "bytes": size,
        "rows": rows,
        "datasetVersion": dataset_version,
        "modelVersion": model_version,
    }


def bundle(
    store: ObjectStore,
    namespace: str,
    deployment: str,
    run: str,
    model_name: str,
    model_version: int,
    quantize: bool,
    recorded: str = "",
) -> dict[str, Any]:
    """bundle.tar.gz: model.onnx (+ model.int8.onnx), metadata.json, runner.py, SHA256SUMS."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = _model(store, namespace, model_name, model_version, folder, recorded)
        files = {"model.onnx": (folder / ONNX).read_bytes(), "runner.py": RUNNER.read_bytes()}
        metadata: dict[str, Any] = {
            "name": model_name,
            "version": model_version,
            "sha256": model.card["sha256"],
            "features": model.card.get("columns", {}).get("features"),
            "categorical": model.categorical,
            "classes": model.class_names(),
            "task": model.card.get("task", "classification"),
            "dataset": model.card.get("dataset"),
            "createdAt": stamp(),
        }
        report: dict[str, Any] = {}
        if quantize:
            files["model.int8.onnx"], metadata["quantization"] = _quantize(store, namespace, model, folder)
            report["quantization"] = metadata["quantization"]
        files["metadata.json"] = json.dumps(metadata, indent=2, sort_keys=True).encode()
        sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
        files["SHA256SUMS"] = sums.encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in sorted(files.items()):
                info = tarfile.TarInfo(f"{model_name}-v{model_version}/{name}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
                archive.addfile(info, io.BytesIO(data))
        key = layout.bundle(namespace, deployment, run)
        store.put(key, buffer.getvalue())
    return {
        "outcome": "Succeeded",
        "uri": store.uri(key),
        "bytes": len(buffer.getvalue()),
        "modelVersion": model_version,
        "files": sorted(files),
        **report,
    }


def _inputs(chunk: pa.Table, model: LatheModel, features: list[str]) -> Any:
    """A chunk's model inputs: raw columns by name when the graph encodes text ones, else a float32 matrix."""
    if model.categorical:
        return {f: chunk.column(f).to_pylist() for f in [*features, *model.categorical]}
    if not features:
        return np.empty((0, 0), np.float32)
    return np.column_stack([chunk.column(f).to_numpy(zero_copy_only=False).astype(np.float32) for f in features])


def _quantize(store: ObjectStore, namespace: str, model: LatheModel, folder: Path) -> tuple[bytes, dict[str, Any]]:
    """Dynamic int8 quantization (onnxruntime), and its accuracy next to float32 on the training data's test split."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = folder / "model.int8.onnx"
    quantize_dynamic(str(folder / ONNX), str(target), weight_type=QuantType.QInt8)
    quantized = ort.InferenceSession(str(target), session_options(), providers=["CPUExecutionProvider"])
    x, y = _holdout(store, namespace, model)
    rows = model.check(x, max_rows=None)
    feeds = model.feeds(rows)
    data = target.read_bytes()
    sizes = {"rows": int(len(y)), "bytes": len(data), "floatBytes": (folder / ONNX).stat().st_size}
    if model.regression:  # mean absolute error in the target's units, float32 and int8
        full = float(np.abs(model.infer(rows)[:, 0] - y).mean())
        small = float(np.abs(quantized.run(None, feeds)[0].reshape(-1) - y).mean())
        figures = {"mae": round(small, 6), "floatMae": round(full, 6), "maeDelta": round(small - full, 6)}
        return data, {"type": "dynamic-int8", **figures, **sizes}
    full = float((model.infer(rows).argmax(1) == y).mean())  # y: class indices in the card's class order
    small = float((quantized.run(None, feeds)[0].argmax(1) == y).mean())  # argmax of logits
    return data, {
        "type": "dynamic-int8",
        "accuracy": round(small, 6),
        "floatAccuracy": round(full, 6),
        "accuracyDelta": round(small - full, 6),
        "rows": int(len(y)),
        "bytes": len(data),
        "floatBytes": (folder / ONNX).stat().st_size,
    }


def _holdout(store: ObjectStore, namespace: str, model: LatheModel) -> tuple[Any, np.ndarray]:
    """The test split of the Dataset version the model was trained on (same split function, same seed); with
    categorical columns, as raw columns by name."""
    from .steps.encoding import decode
    from .steps.split import split

    card = model.card
    dataset, columns = card.get("dataset") or {}, card.get("columns") or {}
    versions = DatasetVersions(store, namespace, str(dataset.get("name")))
    if not dataset.get("version") or not versions.exists(str(dataset["version"])):
        raise OfflineFailed(
            "DatasetNotFound", f"the training data {dataset} is gone; cannot measure the int8 model's accuracy"
        )
    frame = pq.read_table(io.BytesIO(versions.data(str(dataset["version"]))), use_threads=False).to_pandas()
    task = str(card.get("task", "classification"))
    parts = split(frame, str(columns.get("target", "label")), int(card.get("seed", 0)), task=task)
    if not parts.encoding.categorical:
        return parts.x_test, parts.y_test
    numbers, strings = decode(parts.x_test, parts.encoding)
    raw = {name: numbers[:, i].tolist() for i, name in enumerate(parts.encoding.features)}
    raw.update({name: strings[:, j].tolist() for j, name in enumerate(parts.encoding.categorical)})
    return raw, parts.y_test

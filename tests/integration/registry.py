"""A real registry in the real S3 server for ModelDeployment tests: a digits Dataset version and model versions.

The models are trained here (a small MLP, a few seconds) and registered the way the
training pipeline registers them; ``broken_onnx`` is a model that fails inside
onnxruntime on real inputs, the errors a bad release would inject.
"""

from __future__ import annotations

import functools
import hashlib
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
from onnx import TensorProto, helper

from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store import dumps
from lathe_core.store_s3 import S3Store
from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps import schema
from lathe_pipelines.steps.classifier import train
from lathe_pipelines.steps.export import export
from lathe_pipelines.steps.profile import profile
from lathe_pipelines.steps.split import split
from tests.servers.s3 import S3Server

SEED = 11
MODEL = "digits-classifier"


def store(s3: S3Server, namespace: str) -> S3Store:
    return S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")


@functools.cache
def trained(seed: int = SEED) -> tuple[bytes, list[str], list[str]]:
    """(model.onnx, features, classes) of an MLP trained on digits' train split."""
    parts = split(digits(), "label", seed)
    model = train(
        parts.x_train,
        parts.y_train,
        parts.x_val,
        parts.y_val,
        len(parts.classes),
        "mlp",
        {"epochs": 4, "hidden": [64]},
        seed,
    )
    path = Path(tempfile.mkdtemp()) / "model.onnx"
    export(model.model, len(parts.features), path)
    return path.read_bytes(), parts.features, parts.classes


def broken_onnx(features: int, classes: int) -> bytes:
    """Looks like a classifier ([N, features] -> [N, classes]) but Gather fails on any pixel value above 1."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [2, classes], [0.0] * (2 * classes))
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMax", ["input"], ["peak"], keepdims=0),
            helper.make_node("Cast", ["peak"], ["index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["table", "index"], ["logits"], axis=0),
        ],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [table],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def publish_digits(target: S3Store, namespace: str) -> str:
    """The digits Dataset version, as an ingest would publish it; returns its version id."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(digits(), preserve_index=False), buffer)
    data = buffer.getvalue()
    version = "sha256:" + hashlib.sha256(data).hexdigest()
    frame = digits()
    reference = dumps(profile(frame, schema.infer(frame), "label"))  # what DriftMonitors compare with
    DatasetVersions(target, namespace, "digits").publish(
        version, {"data.parquet": data, "profile.json": reference}, {"version": version, "rows": len(frame)}
    )
    return version


def register(
    target: S3Store,
    namespace: str,
    onnx_bytes: bytes,
    features: list[str],
    classes: list[str],
    dataset_version: str,
    run: str,
) -> int:
    card: dict[str, Any] = {
        "name": MODEL,
        "run": {"id": run},
        "dataset": {"name": "digits", "version": dataset_version},
        "seed": SEED,
        "columns": {"features": features, "classes": classes, "target": "label"},
    }
    version, _ = ModelRegistry(target, namespace, MODEL).register(onnx_bytes, card)
    return version


def registry(s3: S3Server, namespace: str, broken: bool = True) -> dict[str, Any]:
    """Versions 1 and 2 good (2 trained with another seed), 3 broken; and the Dataset version they came from."""
    target = store(s3, namespace)
    dataset_version = publish_digits(target, namespace)
    good, features, classes = trained()
    other = trained(SEED + 1)[0]
    versions = [
        register(target, namespace, good, features, classes, dataset_version, "run-1"),
        register(target, namespace, other, features, classes, dataset_version, "run-2"),
    ]
    if broken:
        versions.append(
            register(
                target, namespace, broken_onnx(len(features), len(classes)), features, classes, dataset_version, "run-3"
            )
        )
    rows = digits().drop(columns="label")[features].to_numpy(dtype=np.float32)
    return {
        "store": target,
        "dataset_version": dataset_version,
        "versions": versions,
        "features": features,
        "classes": classes,
        "rows": rows,
        "onnx": good,
    }

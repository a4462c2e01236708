"""Batch and edge ModelDeployments in local mode: predictions that match in-process onnxruntime, a bundle that runs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq

from tests.conftest import eventually
from tests.integration.conftest import Kubectl
from tests.integration.registry import MODEL, registry
from tests.integration.test_model_deployment_local import apply, local_operator, ready, status  # noqa: F401
from tests.servers.s3 import S3Server


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_batch_scores_a_dataset_version_like_in_process_onnxruntime(
    kubectl: Kubectl,
    namespace: str,
    s3: S3Server,
    local_operator: Any,
) -> None:
    models = registry(s3, namespace, broken=False)
    local_operator()
    version = models["dataset_version"]
    apply(
        kubectl,
        namespace,
        "score",
        mode="batch",
        batch={"dataset": {"name": "digits", "version": version}, "chunkRows": 500},
    )
    eventually(lambda: ready(kubectl, namespace, "score") == ("True", "Scored"), timeout=120)
    done = status(kubectl, namespace, "score")
    assert done["rowsScored"] == 1797 and done["outputUri"].startswith(f"s3://lathe-{namespace}/predictions/")
    store = models["store"]
    prefix = done["outputUri"].split("/", 3)[3]
    manifest = json.loads(store.get(prefix + "manifest.json"))
    assert manifest["datasetVersion"] == version and manifest["modelVersion"] == 1 and len(manifest["parts"]) == 4
    tables = [pq.read_table(io.BytesIO(store.get(key))) for key in manifest["parts"]]
    assert tables[0].schema.metadata[b"lathe.dataset_version"].decode() == version
    got = np.vstack([np.array(t.column("probabilities").to_pylist(), dtype=np.float32) for t in tables])
    session = ort.InferenceSession(models["onnx"], providers=["CPUExecutionProvider"])
    expected = np.vstack(
        [softmax(session.run(None, {"input": models["rows"][i : i + 500]})[0]) for i in range(0, 1797, 500)]
    )
    assert np.array_equal(got.argmax(1), expected.argmax(1)) and np.allclose(got, expected, atol=1e-6)
    predicted = [p for t in tables for p in t.column("prediction").to_pylist()]
    assert predicted == [models["classes"][i] for i in expected.argmax(1)]
    assert done["outputBytes"] > 0


def test_batch_of_a_missing_dataset_version_fails_with_a_reason(
    kubectl: Kubectl,
    namespace: str,
    s3: S3Server,
    local_operator: Any,
) -> None:
    registry(s3, namespace, broken=False)
    local_operator()
    apply(
        kubectl,
        namespace,
        "score",
        mode="batch",
        batch={"dataset": {"name": "digits", "version": "sha256:" + "0" * 64}},
    )
    eventually(lambda: ready(kubectl, namespace, "score") == ("False", "DatasetNotFound"), timeout=120)
    assert status(kubectl, namespace, "score")["phase"] == "Failed"


def test_edge_bundle_runs_with_its_runner_and_records_the_int8_delta(
    kubectl: Kubectl,
    namespace: str,
    s3: S3Server,
    local_operator: Any,
    tmp_path: Path,
) -> None:
    models = registry(s3, namespace, broken=False)
    local_operator()
    apply(kubectl, namespace, "edge", mode="edge", edge={"quantize": True})
    eventually(lambda: ready(kubectl, namespace, "edge") == ("True", "Bundled"), timeout=120)
    done = status(kubectl, namespace, "edge")
    assert "int8 accuracy delta" in done["conditions"][0]["message"]
    data = models["store"].get(done["outputUri"].split("/", 3)[3])
    assert len(data) == done["outputBytes"]
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(tmp_path, filter="data")
    bundle = tmp_path / f"{MODEL}-v1"
    assert sorted(p.name for p in bundle.iterdir()) == [
        "SHA256SUMS",
        "metadata.json",
        "model.int8.onnx",
        "model.onnx",
        "runner.py",
    ]
    metadata = json.loads((bundle / "metadata.json").read_text())
    quantization = metadata["quantization"]
    assert quantization["rows"] > 200 and abs(quantization["accuracyDelta"]) < 0.05
    assert abs(quantization["accuracyDelta"] - (quantization["accuracy"] - quantization["floatAccuracy"])) < 2e-6

    rows = models["rows"][:20]
    runner = [sys.executable, str(bundle / "runner.py")]
    out = subprocess.run(
        runner,
        input=json.dumps(rows.tolist()),
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    answers = [json.loads(line) for line in out.splitlines()]
    session = ort.InferenceSession(models["onnx"], providers=["CPUExecutionProvider"])
    expected = softmax(session.run(None, {"input": rows})[0])
    assert [a["prediction"] for a in answers] == [models["classes"][i] for i in expected.argmax(1)]
    int8 = subprocess.run(
        [*runner, "--int8"], input=json.dumps(rows.tolist()), capture_output=True, text=True, check=True
    ).stdout
    assert len(int8.splitlines()) == 20

    (bundle / "model.onnx").write_bytes((bundle / "model.onnx").read_bytes() + b"\0")
    damaged = subprocess.run(runner, input="[]", capture_output=True, text=True)
    assert damaged.returncode != 0 and "does not match SHA256SUMS" in damaged.stderr

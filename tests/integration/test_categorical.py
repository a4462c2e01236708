"""Data with text (categorical) columns end to end in local mode: a PyTorch and a LightGBM model trained on the
one-hot encoding, with the encoding inside the exported graph; served, scored in batch and watched for drift on
the raw columns, by name."""

from __future__ import annotations

import copy
import io
import json
import random
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store_s3 import S3Store
from lathe_pipelines.sample_data import rides
from lathe_pipelines.steps.encoding import decode
from lathe_pipelines.steps.split import split
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl
from tests.integration.test_dataset import raw  # noqa: F401  (fixture)
from tests.integration.test_model_deployment_local import base, local_operator, status  # noqa: F401
from tests.integration.test_model_deployment_local import ready as deployment_ready
from tests.integration.test_model_server import call
from tests.integration.test_training_frameworks import deploy, deployment
from tests.integration.test_training_run import ready
from tests.servers.s3 import S3Server

DATASET = load_yaml(ROOT / "examples/01-dataset/dataset-rides.yaml")
RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun-categorical.yaml")
COLUMNS = ["city", "vehicle", "distance_km", "hour"]


def manifests(bucket: str) -> str:
    data = copy.deepcopy(DATASET)
    data["spec"]["source"]["uri"] = f"s3://{bucket}/rides/rides.csv"
    run = copy.deepcopy(RUN)
    run["spec"]["pipeline"] = {"backend": "local"}
    boosted = copy.deepcopy(run)
    boosted["metadata"]["name"] = "rides-lightgbm-1"
    boosted["spec"]["model"] = {
        "name": "rides-lightgbm",
        "framework": "lightgbm",
        "parameters": {"n_estimators": 40, "num_leaves": 8},
        "seed": 42,
    }
    return yaml.safe_dump_all([data, run, boosted])


def raw_rows(frame: Any, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The test split as raw values by column (decoded from the encoded rows), and its true classes."""
    parts = split(frame, "late", seed)
    numbers, strings = decode(parts.x_test, parts.encoding)
    named = [
        {
            **{name: float(numbers[i, j]) for j, name in enumerate(parts.encoding.features)},
            **{name: str(strings[i, j]) for j, name in enumerate(parts.encoding.categorical)},
        }
        for i in range(len(parts.y_test))
    ]
    return named, [parts.classes[k] for k in parts.y_test]


def test_text_columns_are_encoded_in_the_model_and_taken_raw_by_name_everywhere(
    kubectl: Kubectl, namespace: str, raw: Any, local_operator: Any, s3: S3Server
) -> None:
    raw(rides(), "rides/rides.csv")
    local_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=manifests(raw.bucket))
    for run in ("rides-mlp-1", "rides-lightgbm-1"):
        eventually(lambda r=run: ready(kubectl, namespace, r) == ("True", "Registered"), timeout=300)
    found = {r: kubectl.get("trainingrun", r, "-n", namespace)["status"] for r in ("rides-mlp-1", "rides-lightgbm-1")}
    assert all(f["metrics"]["accuracy"] > 0.75 for f in found.values()), found  # numbers alone: about 0.63

    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")
    card = ModelRegistry(store, namespace, "rides-mlp").card(1)
    columns = card["columns"]
    assert columns["features"] == ["distance_km", "hour"] and columns["categorical"] == ["city", "vehicle"]
    assert sorted(columns["categories"]["vehicle"]) == ["bike", "sedan", "van"]
    boosted = ModelRegistry(store, namespace, "rides-lightgbm").card(1)
    assert boosted["parity"]["argmaxAgreement"] == 1.0 and boosted["columns"]["categorical"] == ["city", "vehicle"]

    # Served: raw values by name, in any order, in both protocols; on the test split the card's accuracy.
    version = found["rides-mlp-1"]["datasetVersion"]
    frame = pq.read_table(io.BytesIO(DatasetVersions(store, namespace, "rides").data(version))).to_pandas()
    named, truth = raw_rows(frame, 42)
    url = base(deploy(kubectl, namespace, "rides", "rides-mlp", logging={"sampleRate": 1})["endpoint"])
    order = random.Random(0).sample(COLUMNS, len(COLUMNS))
    body = {"data": {"names": order, "ndarray": [[row[c] for c in order] for row in named]}, "meta": {"puid": "t"}}
    code, answer = call(url, "/api/v1.0/predictions", body)
    assert code == 200, answer
    classes = answer["data"]["names"]
    predicted = [classes[int(np.argmax(p))] for p in answer["data"]["ndarray"]]
    served = float(np.mean([p == t for p, t in zip(predicted, truth)]))
    assert abs(served - found["rides-mlp-1"]["metrics"]["accuracy"]) < 1e-4  # status keeps 4 digits
    inputs = [
        {
            "name": c,
            "datatype": "BYTES" if c in ("city", "vehicle") else "FP64",
            "shape": [3],
            "data": [r[c] for r in named[:3]],
        }
        for c in COLUMNS
    ]
    code, v2 = call(url, "/v2/models/rides-mlp/infer", {"inputs": inputs})
    assert code == 200 and np.allclose(
        np.reshape(v2["outputs"][0]["data"], (3, -1)), answer["data"]["ndarray"][:3], atol=1e-6
    )
    code, refused = call(url, "/api/v1.0/predictions", {"data": {"names": ["city", "hour"], "ndarray": [["oslo", 3]]}})
    assert code == 400 and refused["status"]["reason"] == "MissingColumns", refused

    # The request log keeps the raw text; a DriftMonitor over it sees the cities shift (every ride in lima).
    shifted = [{**row, "city": "lima"} for row in named]
    body = {
        "data": {"names": COLUMNS, "ndarray": [[row[c] for c in COLUMNS] for row in shifted]},
        "meta": {"puid": "s"},
    }
    assert call(url, "/api/v1.0/predictions", body)[0] == 200
    monitor = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "rides"},
        "spec": {"deployment": "rides", "interval": "5s", "window": {"duration": "1h", "minSamples": 100}},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(monitor))

    def drifted() -> dict[str, Any]:
        checked = kubectl.get("driftmonitor", "rides", "-n", namespace).get("status") or {}
        assert checked.get("samples") == 2 * len(named) + 3, checked  # both rounds and the V2 request's rows
        return checked

    checked = eventually(drifted, timeout=180)
    by_name = {f["name"]: f for f in checked["features"]}
    assert by_name["city"]["drifted"] and not by_name["vehicle"]["drifted"], checked["features"]

    # Scored in batch by name, over the whole version: the LightGBM model, as it answers online.
    batch = {"dataset": {"name": "rides", "version": version}, "chunkRows": 1000}
    kubectl.run(
        "apply", "-n", namespace, "-f", "-", stdin=deployment("lgbm-batch", "rides-lightgbm", mode="batch", batch=batch)
    )
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=deployment("lgbm", "rides-lightgbm"))
    eventually(lambda: deployment_ready(kubectl, namespace, "lgbm-batch") == ("True", "Scored"), timeout=180)
    prefix = status(kubectl, namespace, "lgbm-batch")["outputUri"].split("/", 3)[3]
    manifest = json.loads(store.get(prefix + "manifest.json"))
    tables = [pq.read_table(io.BytesIO(store.get(key))) for key in manifest["parts"]]
    scored = [p for t in tables for p in t.column("prediction").to_pylist()]
    assert len(scored) == len(frame) and np.mean(np.asarray(scored) == frame["late"].to_numpy()) > 0.75
    eventually(lambda: deployment_ready(kubectl, namespace, "lgbm")[0] == "True", timeout=120)
    first = frame.iloc[:200]
    body = {"data": {"names": COLUMNS, "ndarray": first[COLUMNS].to_numpy(dtype=object).tolist()}}
    code, online = call(base(status(kubectl, namespace, "lgbm")["endpoint"]), "/api/v1.0/predictions", body)
    assert code == 200
    names = online["data"]["names"]
    assert [names[int(np.argmax(p))] for p in online["data"]["ndarray"]] == scored[:200]

"""A regression TrainingRun end to end in local mode: trained, gated on MAE, registered, served (values, and
feedback graded by absolute error), scored in batch and bundled for the edge; a gate it misses ends the run."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store_s3 import S3Store
from lathe_pipelines.sample_data import diabetes
from lathe_pipelines.steps.split import split
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl
from tests.integration.test_dataset import raw  # noqa: F401  (fixture)
from tests.integration.test_model_deployment_local import base, local_operator, status  # noqa: F401
from tests.integration.test_model_server import call
from tests.integration.test_training_frameworks import deploy
from tests.integration.test_training_run import ready
from tests.servers.s3 import S3Server

DATASET = load_yaml(ROOT / "examples/01-dataset/dataset-diabetes.yaml")
RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun-regression.yaml")


def manifests(bucket: str) -> str:
    data = copy.deepcopy(DATASET)
    data["spec"]["source"]["uri"] = f"s3://{bucket}/diabetes/diabetes.csv"
    run = copy.deepcopy(RUN)
    run["spec"]["pipeline"] = {"backend": "local"}
    strict = copy.deepcopy(run)  # no model of this data comes within 1 of the truth on average
    strict["metadata"]["name"], strict["spec"]["gates"] = "diabetes-strict", [{"metric": "mae", "max": 1}]
    return yaml.safe_dump_all([data, run, strict])


def test_a_regressor_is_trained_gated_on_mae_registered_served_and_scored(
    kubectl: Kubectl, namespace: str, raw: Any, local_operator: Any, s3: S3Server
) -> None:
    raw(diabetes(), "diabetes/diabetes.csv")
    local_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=manifests(raw.bucket))
    eventually(lambda: ready(kubectl, namespace, "diabetes-mlp-1") == ("True", "Registered"), timeout=300)
    found = kubectl.get("trainingrun", "diabetes-mlp-1", "-n", namespace)["status"]
    metrics = found["metrics"]
    assert metrics["mae"] < 60 and metrics["r2"] > 0.2 and metrics["rmse"] >= metrics["mae"]
    assert {g["metric"]: g["passed"] for g in found["gates"]} == {"mae": True, "r2": True}

    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")
    card = ModelRegistry(store, namespace, "diabetes-mlp").card(1)
    assert card["task"] == "regression" and card["model"]["task"] == "regression"
    assert card["parity"]["maxAbsDiff"] <= 1e-4 and "valRmse" in card["training"]["history"][-1]

    # Served: a value per row. On the test split (same split, same seed) its MAE is the card's.
    frame = pq.read_table(io.BytesIO(DatasetVersions(store, namespace, "diabetes").data(found["datasetVersion"])))
    parts = split(frame.to_pandas(), "progression", 42, task="regression")
    url = base(deploy(kubectl, namespace, "mlp", "diabetes-mlp")["endpoint"])
    code, answer = call(
        url, "/api/v1.0/predictions", {"data": {"ndarray": parts.x_test.tolist()}, "meta": {"puid": "t"}}
    )
    assert code == 200 and answer["data"]["names"] == ["value"], answer
    served = np.array(answer["data"]["ndarray"])[:, 0]
    assert abs(float(np.abs(served - parts.y_test).mean()) - metrics["mae"]) < 1e-3

    # Feedback is graded by absolute error: the live MAE is the summary's sum over its count.
    code, graded = call(
        url,
        "/api/v1.0/feedback",
        {"response": {"meta": {"puid": "t"}}, "truth": {"data": {"ndarray": parts.y_test.tolist()}}},
    )
    assert code == 200 and graded["meta"]["tags"]["matched"] is True, graded
    figures = {
        line.split("{")[0]: float(line.split()[-1])
        for line in call(url, "/metrics")[1].splitlines()
        if line.startswith("lathe_model_feedback_absolute_error_")
    }
    live = figures["lathe_model_feedback_absolute_error_sum"] / figures["lathe_model_feedback_absolute_error_count"]
    assert (
        figures["lathe_model_feedback_absolute_error_count"] == len(parts.y_test) and abs(live - metrics["mae"]) < 1e-3
    )
    refused = call(
        url, "/api/v1.0/feedback", {"response": {"meta": {"puid": "t"}}, "truth": {"data": {"ndarray": ["x"]}}}
    )
    assert refused[0] in (400, 200)  # graded already (200, unmatched) or not a number (400): never counted
    assert "lathe_model_feedback_total{" not in call(url, "/metrics")[1]  # no accuracy from a regressor

    # Scored in batch: a value column over the whole version, the same values as online.
    batch = {"dataset": {"name": "diabetes", "version": found["datasetVersion"]}, "chunkRows": 200}
    done = deploy(kubectl, namespace, "mlp-batch", "diabetes-mlp", "Scored", 180, mode="batch", batch=batch)
    prefix = done["outputUri"].split("/", 3)[3]
    manifest = json.loads(store.get(prefix + "manifest.json"))
    tables = [pq.read_table(io.BytesIO(store.get(key))) for key in manifest["parts"]]
    assert manifest["task"] == "regression" and tables[0].column_names == ["row", "value"]
    values = np.concatenate([t.column("value").to_numpy() for t in tables])
    assert len(values) == frame.num_rows

    # An edge bundle whose int8 copy is measured by MAE.
    bundled = deploy(
        kubectl, namespace, "mlp-edge", "diabetes-mlp", "Bundled", 180, mode="edge", edge={"quantize": True}
    )
    message = next(c for c in bundled["conditions"] if c["type"] == "Ready")["message"]
    assert "int8 MAE delta" in message, message

    # The run whose MAE gate no model meets: GateFailed, nothing registered under a second version.
    eventually(lambda: ready(kubectl, namespace, "diabetes-strict") == ("False", "GateFailed"), timeout=300)
    assert ModelRegistry(store, namespace, "diabetes-mlp").versions() == [1]

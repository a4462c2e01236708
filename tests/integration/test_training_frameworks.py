"""scikit-learn, XGBoost and LightGBM TrainingRuns end to end in local mode: each trained by kfp.local, gated,
registered, served, scored in batch and bundled for the edge.

The framework's own predictions are the reference: the test fits the same estimator (same
parameters, same seed) on the same split of the same Dataset version, and the model server's
and the batch run's probabilities must equal its ``predict_proba`` within the parity tolerance.
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store_s3 import S3Store
from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps import sklearn_model
from lathe_pipelines.steps.split import split
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl
from tests.integration.test_dataset import dataset, raw  # noqa: F401  (fixture)
from tests.integration.test_model_deployment_local import base, local_operator, status  # noqa: F401
from tests.integration.test_model_deployment_local import ready as deployment_ready
from tests.integration.test_model_server import call
from tests.integration.test_training_run import ready
from tests.servers.s3 import S3Server

RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun-sklearn.yaml")
# Each framework's example: its estimator class, its name on the card, its distribution and its converter's.
EXAMPLES = {
    "sklearn": ("RandomForestClassifier", "scikit-learn", "scikit-learn", "skl2onnx"),
    "xgboost": ("XGBClassifier", "XGBoost", "xgboost-cpu", "onnxmltools"),
    "lightgbm": ("LGBMClassifier", "LightGBM", "lightgbm", "onnxmltools"),
}


def forest_run(name: str, example: dict[str, Any] = RUN, **model: Any) -> str:
    """The example, trained by the local pipeline backend."""
    manifest = copy.deepcopy(example)
    manifest["metadata"]["name"] = name
    manifest["spec"]["pipeline"] = {"backend": "local"}
    manifest["spec"]["model"].update(model)
    return yaml.safe_dump(manifest)


def deployment(name: str, model: str, **spec: Any) -> str:
    manifest = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"name": model, "version": 1}, **spec},
    }
    return yaml.safe_dump(manifest)


def deploy(
    kubectl: Kubectl, namespace: str, name: str, model: str, reason: str = "", timeout: float = 120, **spec: Any
) -> dict[str, Any]:
    """Apply a ModelDeployment of ``model`` version 1 and wait until it is Ready (for ``reason`` where given):
    its status (``endpoint`` online, ``outputUri`` in batch)."""
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=deployment(name, model, **spec))

    def done() -> bool:
        found = deployment_ready(kubectl, namespace, name)
        return found == ("True", reason) if reason else found[0] == "True"

    eventually(done, timeout=timeout)
    return status(kubectl, namespace, name)


@pytest.mark.parametrize("framework", list(EXAMPLES))
def test_a_framework_model_is_trained_gated_registered_served_and_scored(
    kubectl: Kubectl, namespace: str, raw: Any, local_operator: Any, s3: S3Server, framework: str
) -> None:
    estimator, library, distribution, converter = EXAMPLES[framework]
    example = (
        RUN if framework == "sklearn" else load_yaml(ROOT / f"examples/02-training-run/trainingrun-{framework}.yaml")
    )
    run, model = example["metadata"]["name"], example["spec"]["model"]["name"]
    parameters, seed = example["spec"]["model"]["parameters"], example["spec"]["model"]["seed"]
    raw(digits())
    local_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket))
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=forest_run(run, example))  # the example
    eventually(lambda: ready(kubectl, namespace, run) == ("True", "Registered"), timeout=300)
    found = kubectl.get("trainingrun", run, "-n", namespace)["status"]
    assert found["metrics"]["accuracy"] > 0.9 and found["model"]["version"] == 1

    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")
    card = ModelRegistry(store, namespace, model).card(1)
    assert card["training"]["framework"]["name"] == library and card["training"]["device"] == "cpu"
    assert card["parity"]["maxAbsDiff"] <= 1e-5 and card["parity"]["argmaxAgreement"] == 1.0
    assert card["model"]["framework"] == framework and card["model"]["parameters"] == parameters
    assert card["model"].get("estimator", estimator) == estimator and "type" not in card["model"]
    assert distribution in card["libraries"] and converter in card["libraries"]

    # The framework's own model: the same estimator, parameters and seed on the same split.
    frame = pq.read_table(io.BytesIO(DatasetVersions(store, namespace, "digits").data(found["datasetVersion"])))
    data = frame.to_pandas()
    parts = split(data, "label", seed)
    own = sklearn_model.fit(
        framework,
        estimator,
        parameters,
        seed,
        np.concatenate([parts.x_train, parts.x_val]),
        np.concatenate([parts.y_train, parts.y_val]),
        10,
    )
    rows = data.drop(columns="label").to_numpy(dtype=np.float32)
    expected = own.predict_proba(rows)

    # Served online by Lathe's model server.
    url = base(deploy(kubectl, namespace, "forest", model)["endpoint"])
    code, answer = call(url, "/api/v1.0/predictions", {"data": {"ndarray": rows[:200].tolist()}})
    assert code == 200, answer
    assert np.abs(np.array(answer["data"]["ndarray"]) - expected[:200]).max() <= 1e-5
    assert answer["meta"]["requestPath"]["model"] == f"{model}:1"

    # Scored in batch over the whole Dataset version.
    batch = {"dataset": {"name": "digits", "version": found["datasetVersion"]}, "chunkRows": 600}
    scored = deploy(kubectl, namespace, "forest-batch", model, "Scored", 180, mode="batch", batch=batch)
    prefix = scored["outputUri"].split("/", 3)[3]
    manifest = json.loads(store.get(prefix + "manifest.json"))
    tables = [pq.read_table(io.BytesIO(store.get(key))) for key in manifest["parts"]]
    scored = np.vstack([np.array(t.column("probabilities").to_pylist()) for t in tables])
    assert scored.shape == expected.shape and np.abs(scored - expected).max() <= 1e-5

    # An edge bundle with its int8 copy (a tree ensemble has no weights to quantize: the copy matches).
    bundled = deploy(kubectl, namespace, "forest-edge", model, "Bundled", 180, mode="edge", edge={"quantize": True})
    edge = next(c for c in bundled["conditions"] if c["type"] == "Ready")
    assert "int8 accuracy delta +0.0000" in edge["message"], edge


def test_parameters_the_estimator_refuses_end_the_run_with_its_message(
    kubectl: Kubectl, namespace: str, raw: Any, local_operator: Any
) -> None:
    raw(digits())
    local_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket))
    bad = forest_run("digits-forest-bad", parameters={"n_estimators": 0})
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=bad)
    eventually(
        lambda: ready(kubectl, namespace, "digits-forest-bad") == ("False", "InvalidHyperparameters"), timeout=300
    )
    conditions = kubectl.get("trainingrun", "digits-forest-bad", "-n", namespace)["status"]["conditions"]
    message = next(c["message"] for c in conditions if c["type"] == "Ready")
    assert "RandomForestClassifier" in message and "'n_estimators' parameter" in message


def test_the_api_server_refuses_a_framework_without_what_it_needs(kubectl: Kubectl, namespace: str) -> None:
    cases = [
        ({"framework": "sklearn", "estimator": None}, "framework sklearn needs estimator"),
        ({"framework": "pytorch"}, "estimator and parameters are for frameworks sklearn, xgboost"),
        ({"hyperparameters": {"epochs": 3}}, "hyperparameters are PyTorch's"),
        ({"framework": "xgboost"}, "framework xgboost takes estimator XGBClassifier"),
        ({"framework": "lightgbm", "estimator": "LGBMRegressor"}, "framework lightgbm takes estimator LGBMClassifier"),
        ({"framework": "catboost"}, "Unsupported value"),
        ({"estimator": "sklearn.ensemble.RandomForestClassifier"}, "spec.model.estimator"),
    ]
    for change, message in cases:
        manifest = yaml.safe_load(forest_run("refused"))
        manifest["spec"]["model"].update(change)
        manifest["spec"]["model"] = {k: v for k, v in manifest["spec"]["model"].items() if v is not None}
        result = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
        assert result.returncode != 0 and message in result.stderr, (change, result.stderr)

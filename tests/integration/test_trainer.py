"""A team's own trainer (spec.trainer) end to end in local mode: the example's command runs as a process with the
pinned version's splits; its model.onnx is evaluated, gated, registered, served and scored like Lathe's own.
And what goes wrong says so: a failing command (its last lines), no model.onnx, scores that are probabilities,
a model spec the trainer makes meaningless, LATHE_* variables."""

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
from lathe_pipelines.sample_data import digits
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl
from tests.integration.test_dataset import dataset, raw  # noqa: F401  (fixture)
from tests.integration.test_model_deployment_local import base, local_operator, status  # noqa: F401
from tests.integration.test_model_server import call
from tests.integration.test_training_frameworks import deploy
from tests.integration.test_training_run import ready
from tests.servers.s3 import S3Server

RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun-trainer.yaml")


def own_run(name: str, **trainer: Any) -> str:
    manifest = copy.deepcopy(RUN)
    manifest["metadata"]["name"] = name
    manifest["spec"]["pipeline"] = {"backend": "local"}
    manifest["spec"]["trainer"].update(trainer)
    return yaml.safe_dump(manifest)


def message(kubectl: Kubectl, namespace: str, name: str) -> str:
    conditions = kubectl.get("trainingrun", name, "-n", namespace)["status"]["conditions"]
    return str(next(c["message"] for c in conditions if c["type"] == "Ready"))


def test_a_teams_trainer_is_evaluated_gated_registered_served_and_scored(
    kubectl: Kubectl, namespace: str, raw: Any, local_operator: Any, s3: S3Server
) -> None:
    raw(digits())
    local_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket))
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=own_run("digits-own-1"))  # the example
    eventually(lambda: ready(kubectl, namespace, "digits-own-1") == ("True", "Registered"), timeout=300)
    found = kubectl.get("trainingrun", "digits-own-1", "-n", namespace)["status"]
    assert found["metrics"]["accuracy"] > 0.9 and found["model"]["version"] == 1

    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")
    card = ModelRegistry(store, namespace, "digits-own").card(1)
    training = card["training"]
    assert training["framework"] == {"name": "trainer", "image": RUN["spec"]["trainer"]["image"]}
    assert training["device"] == "cpu" and training["trainerMetrics"]["epochs"] == 300
    assert training["seconds"] > 0 and 0 < len(training["features"]) < len(card["columns"]["features"])
    assert card["trainer"]["command"] == RUN["spec"]["trainer"]["command"] and card["model"] == {
        "name": "digits-own",
        "task": "classification",
        "seed": 42,
    }
    assert card["parity"]["checked"] is False

    # Served online over every feature by name order, as any model: the trainer's Gather picks its columns.
    frame = pq.read_table(io.BytesIO(DatasetVersions(store, namespace, "digits").data(found["datasetVersion"])))
    data = frame.to_pandas()
    rows = data.drop(columns="label").to_numpy(dtype=np.float32)
    code, answer = call(
        base(deploy(kubectl, namespace, "own", "digits-own")["endpoint"]),
        "/api/v1.0/predictions",
        {"data": {"ndarray": rows[:300].tolist()}},
    )
    assert code == 200, answer
    online = np.array(answer["data"]["ndarray"])
    assert (online.argmax(axis=1) == data["label"].to_numpy()[:300]).mean() > 0.9

    # Scored in batch over the whole version: the same probabilities as online.
    batch = {"dataset": {"name": "digits", "version": found["datasetVersion"]}, "chunkRows": 600}
    done = deploy(kubectl, namespace, "own-batch", "digits-own", "Scored", 180, mode="batch", batch=batch)
    prefix = done["outputUri"].split("/", 3)[3]
    manifest = json.loads(store.get(prefix + "manifest.json"))
    tables = [pq.read_table(io.BytesIO(store.get(key))) for key in manifest["parts"]]
    scored = np.vstack([np.array(t.column("probabilities").to_pylist()) for t in tables])
    assert scored.shape == (len(rows), 10) and np.abs(scored[:300] - online).max() <= 1e-5


FAILING = "import sys; print('loading'); print('ValueError: no GPU found', file=sys.stderr); sys.exit(3)"
SILENT = "print('trained, but forgot to save')"
PROBABILITIES = """
import json, os, onnx
from onnx import TensorProto, helper
schema = json.load(open(os.path.join(os.environ['LATHE_INPUT'], 'schema.json')))
n, k = len(schema['features']), len(schema['classes'])
graph = helper.make_graph(
    [helper.make_node('MatMul', ['x', 'w'], ['s']), helper.make_node('Softmax', ['s'], ['p'], axis=1)], 'g',
    [helper.make_tensor_value_info('x', TensorProto.FLOAT, [None, n])],
    [helper.make_tensor_value_info('p', TensorProto.FLOAT, [None, k])],
    [helper.make_tensor('w', TensorProto.FLOAT, [n, k], [0.01] * (n * k))])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)
onnx.save(model, os.path.join(os.environ['LATHE_OUTPUT'], 'model.onnx'))
"""


def test_what_a_trainer_gets_wrong_ends_the_run_with_why(
    kubectl: Kubectl, namespace: str, raw: Any, local_operator: Any, s3: S3Server
) -> None:
    raw(digits())
    local_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket))
    cases = {
        "own-fails": (FAILING, "TrainerFailed", ["exited with 3", "ValueError: no GPU found", "loading"]),
        "own-silent": (SILENT, "NoModel", ["wrote no model.onnx to $LATHE_OUTPUT"]),
        "own-probabilities": (PROBABILITIES, "InvalidModel", ["looks like probabilities", "end the graph with Log"]),
    }
    for name, (code, _, _) in cases.items():
        kubectl.run("apply", "-n", namespace, "-f", "-", stdin=own_run(name, command=["python", "-c", code], args=[]))
    for name, (_, reason, parts) in cases.items():
        eventually(lambda name=name, reason=reason: ready(kubectl, namespace, name) == ("False", reason), timeout=300)
        found = message(kubectl, namespace, name)
        assert all(part in found for part in parts), (name, found)
    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")
    assert ModelRegistry(store, namespace, "digits-own").versions() == []  # nothing registered


def test_the_api_server_refuses_what_a_trainer_makes_meaningless(kubectl: Kubectl, namespace: str) -> None:
    cases = [
        ({"model": {"framework": "sklearn", "estimator": "RandomForestClassifier"}}, "spec.model takes only name"),
        ({"model": {"hyperparameters": {"epochs": 3}}}, "spec.model takes only name, task and seed"),
        ({"trainer": {"env": {"LATHE_INPUT": "/data"}}}, "env names starting LATHE_ are Lathe's"),
        ({"trainer": {"command": []}}, "spec.trainer.command"),
    ]
    for change, expected in cases:
        manifest = yaml.safe_load(own_run("refused"))
        for key, value in change.items():
            manifest["spec"][key].update(value)
        result = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
        assert result.returncode != 0 and expected in result.stderr, (change, result.stderr)

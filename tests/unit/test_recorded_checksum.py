"""Every load of a model checks the sha256 its TrainingRun recorded, not only the card a store writer could rewrite:
the server, its fetch step, batch and edge runs, and each serving backend's manifests carry the record."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lathe_core.registry import ModelRegistry
from lathe_core.settings import StoreSettings
from lathe_core.store_local import LocalStore
from lathe_operator.api.v1alpha1 import ModelDeployment
from lathe_operator.reconcile import offline as offline_runs
from lathe_operator.reconcile import seldon
from lathe_operator.reconcile import serving_kubernetes as k8s
from lathe_pipelines import offline
from lathe_serving.fetch import fetch
from lathe_serving.model import LatheModel, ModelError
from tests.unit.test_serving_model import model_dir  # noqa: F401  (fixture: a tiny trained model)

WRONG = "0" * 64


def swapped(model_dir: Path, tmp_path: Path) -> Path:
    """The model's folder after a writer replaced model.onnx and rewrote the card's sha256 to match."""
    folder = tmp_path / "swapped"
    shutil.copytree(model_dir, folder)
    onnx = (folder / "model.onnx").read_bytes() + b"\n"  # other bytes (protobuf ignores nothing: a new digest)
    (folder / "model.onnx").write_bytes(onnx)
    card = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**card, "sha256": hashlib.sha256(onnx).hexdigest()}))
    return folder


def test_the_server_refuses_bytes_unlike_the_record_even_with_a_matching_card(
    model_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    recorded = json.loads((model_dir / "model.json").read_text())["sha256"]
    LatheModel(str(model_dir), threads=1, sha256=recorded).load()
    with pytest.raises(ModelError) as error:
        LatheModel(str(swapped(model_dir, tmp_path)), threads=1, sha256=recorded).load()
    assert error.value.reason == "ChecksumMismatch" and "its TrainingRun recorded" in error.value.message


def registered(model_dir: Path, tmp_path: Path) -> tuple[LocalStore, str]:
    store = LocalStore(str(tmp_path / "store"))
    card = json.loads((model_dir / "model.json").read_text())
    registry = ModelRegistry(store, "ml", "clf")
    registry.register(
        (model_dir / "model.onnx").read_bytes(), {"name": "clf", "run": {"id": "r1"}, "columns": card["columns"]}
    )
    return store, card["sha256"]


def test_fetch_registry_and_offline_runs_refuse_other_bytes(model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    store, recorded = registered(model_dir, tmp_path)
    fetch(store, "ml", "clf", [1], tmp_path / "ok", {1: recorded})
    assert (tmp_path / "ok" / "1" / "model.json").exists()
    with pytest.raises(SystemExit, match="its TrainingRun recorded"):
        fetch(store, "ml", "clf", [1], tmp_path / "bad", {1: WRONG})
    assert ModelRegistry(store, "ml", "clf").onnx(1, recorded)
    with pytest.raises(ValueError, match="its TrainingRun recorded"):
        ModelRegistry(store, "ml", "clf").onnx(1, WRONG)
    with pytest.raises(offline.OfflineFailed) as error:
        offline.bundle(store, "ml", "edge", "run-1", "clf", 1, False, recorded=WRONG)
    assert error.value.reason == "ChecksumMismatch"


def make(**spec: Any) -> ModelDeployment:
    meta = {"name": "web", "namespace": "ml", "uid": "u1", "generation": 3}
    body = {"model": {"name": "clf", "version": 1}, **spec}
    return ModelDeployment.model_validate({"kind": "ModelDeployment", "metadata": meta, "spec": body})


def test_each_backend_hands_the_record_to_what_loads_the_model() -> None:
    recorded = {1: "a" * 64, 2: "b" * 64}
    config_map, deployment, _ = k8s.manifests(
        make(), [(1, 90), (2, 10)], None, image="i", store=StoreSettings(), secret="s", checksums=recorded
    )
    assert json.loads(config_map["data"]["deployment.json"])["checksums"] == {"1": "a" * 64, "2": "b" * 64}
    fetch_args = deployment["spec"]["template"]["spec"]["initContainers"][0]["args"]
    assert fetch_args[-2:] == ["--sha256", f"1={'a' * 64},2={'b' * 64}"]
    sd = seldon.seldon_deployment(
        make(),
        [(1, 90), (2, 10)],
        None,
        {1: "s3://b/1/", 2: "s3://b/2/"},
        image="i",
        store=StoreSettings(),
        storage_secret="s",
        logger_url=None,
        checksums={2: "b" * 64},
    )
    args = [p["componentSpecs"][0]["spec"]["containers"][0]["args"] for p in sd["spec"]["predictors"]]
    assert "--sha256" not in args[0] and args[1][-2:] == ["--sha256", "b" * 64]  # version 1: its card alone
    batch = offline_runs.run_request(make(mode="edge", edge={}), None, recorded[1])
    assert batch.args[-2:] == ("--model-sha256", "a" * 64)

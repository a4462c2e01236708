"""lathe_core with plain values: the store layout, store settings in the environment, run reports, import weight."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.runs import read_report, write_report
from lathe_core.settings import SECRET_KEYS, StoreSettings
from lathe_core.store_local import LocalStore
from tests.conftest import ROOT

VERSION = "sha256:" + "ab" * 32


def test_layout_names_every_key_as_documented() -> None:
    when = datetime(2026, 11, 26, 7, 5, tzinfo=UTC)
    assert layout.dataset_file("ml", "digits", VERSION, layout.DATA) == f"datasets/ml/digits/{'ab' * 32}/data.parquet"
    assert layout.ingest_report("ml", "digits", "r-0") == "datasets/ml/digits/runs/r-0.json"
    assert layout.model_file("ml", "clf", 3, layout.CARD) == "models/ml/clf/3/model.json"
    assert layout.training_report("ml", "clf", "t-1") == "models/ml/clf/runs/t-1.json"
    assert layout.log_partition("ml", "web", when) == "logs/ml/web/2026-11-26/07/"
    assert layout.log_object("logs/ml/web/2026-11-26/07/", 5, 9, 12) == "logs/ml/web/2026-11-26/07/5-9-000012.parquet"
    assert layout.predictions_part("ml", "b", "r", 2) == "predictions/ml/b/r/part-00002.parquet"
    assert layout.bundle("ml", "e", "r") == "bundles/ml/e/r/bundle.tar.gz"
    assert layout.deployment_progress("ml", "b", "r") == "deployments/ml/b/runs/r.progress.json"


def test_versions_are_read_back_from_their_keys_only() -> None:
    assert layout.dataset_version_of("ml", "d", layout.dataset_file("ml", "d", VERSION, layout.MANIFEST)) == VERSION
    assert layout.dataset_version_of("ml", "d", layout.dataset_file("ml", "d", VERSION, layout.DATA)) is None
    assert layout.dataset_version_of("ml", "d", "datasets/ml/d/runs/manifest.json") is None
    assert layout.model_version_of("ml", "m", layout.model_file("ml", "m", 12, layout.CARD)) == 12
    assert layout.model_version_of("ml", "m", layout.model_promoted("ml", "m")) is None


def test_store_settings_round_trip_through_the_environment() -> None:
    settings = StoreSettings(
        uri="s3://b", endpoint="s3:9000", secure=True, access_key="a", secret_key="s", secret_name="creds"
    )
    env = {**settings.env(), "LATHE_STORE_SECRET": "creds"}
    assert StoreSettings.from_env(env) == settings
    assert set(settings.env(keys=False)) == set(env) - set(SECRET_KEYS.values()) - {"LATHE_STORE_SECRET"}
    assert StoreSettings.from_env({}) == StoreSettings()


def test_reports_are_stamped_once_and_read_back(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_report(store, "runs/a.json", {"outcome": "Succeeded"})
    write_report(store, "runs/b.json", {"outcome": "Failed", "finishedAt": "2026-01-01T00:00:00+00:00"})
    stamped = read_report(store, "runs/a.json")
    assert stamped is not None and datetime.fromisoformat(stamped["finishedAt"]).tzinfo is not None
    assert read_report(store, "runs/b.json") == {"outcome": "Failed", "finishedAt": "2026-01-01T00:00:00+00:00"}
    assert read_report(store, "runs/missing.json") is None


def test_domain_classes_write_under_the_layout(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    versions = DatasetVersions(store, "ml", "digits")
    versions.publish(VERSION, {layout.DATA: b"rows"}, {"version": VERSION})
    versions.put_report("r-0", {"outcome": "Published"})
    assert versions.versions() == [VERSION] and versions.data(VERSION) == b"rows"
    models = ModelRegistry(store, "ml", "clf")
    assert models.register(b"onnx", {"run": {"id": "t-1"}})[0] == 1
    models.promote(1, "first")
    assert models.versions() == [1] and models.promoted() == 1
    assert json.loads(store.get("models/ml/clf/1/model.json"))["uri"] == "models/ml/clf/1/model.onnx"


def _modules_after_import(module: str, paths: list[str]) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in paths)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    ("module", "paths", "absent"),
    [
        ("lathe_core.runs", ["core"], {"minio", "pydantic", "pandas", "torch", "kfp"}),
        (
            "lathe_serving.server",
            ["core", "serving"],
            {"lathe_operator", "lathe_pipelines", "pydantic", "pandas", "torch"},
        ),
        (
            "lathe_operator.handlers",
            ["core", "operator", "pipelines"],
            {"torch", "pandas", "great_expectations", "onnxruntime", "lathe_serving"},
        ),
    ],
)
def test_each_package_loads_without_what_it_must_not_carry(module: str, paths: list[str], absent: set[str]) -> None:
    """What import-linter checks statically, checked in a fresh interpreter: the image each package runs in."""
    loaded = _modules_after_import(module, paths)
    assert module.split(".")[0] in loaded and not loaded & absent, sorted(loaded & absent)

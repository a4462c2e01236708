"""Argo CD health for Lathe's kinds: the Lua scripts under manifests/argocd/health, run as Argo CD runs them.

tests/argocd is a small Go program that runs a script under gopher-lua at Argo CD's version,
with Argo CD's libraries and its conversion of the object and of the returned table. Each
fixture under tests/fixtures/argocd is an object captured from a real run (its header says
which test and moment). Argo CD itself does not run here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, load_yaml
from tests.integration.conftest import Kubectl

SCRIPTS = ROOT / "manifests/argocd/health"
FIXTURES = ROOT / "tests/fixtures/argocd"
PATCH = ROOT / "manifests/argocd/argocd-cm-health.yaml"
APPLICATION = ROOT / "manifests/argocd/application.yaml"

# fixture -> (Argo CD status, parts of its message)
CASES = {
    "dataset-created": ("Progressing", "Waiting for the Lathe operator to observe generation 1"),
    "dataset-ingesting": ("Progressing", "Ingesting: Ingest run digits-"),
    "dataset-published": ("Healthy", "Published: Published sha256:"),
    "dataset-refreshing": ("Progressing", "stays current"),
    "dataset-validation-failed": ("Degraded", "ValidationFailed: 1 of 4 expectations failed", "stays current"),
    "dataset-source-not-found": ("Degraded", "SourceNotFound: no csv object at s3://"),
    "dataset-store-unavailable": ("Degraded", "StoreUnavailable: 127.0.0.1:1 unreachable"),
    "dataset-spec-changed": ("Progressing", "observe generation 2"),
    "trainingrun-waiting-for-dataset": ("Progressing", "DatasetNotFound: Dataset digits does not exist"),
    "trainingrun-running": ("Progressing", "Running: Pipeline run digits-mlp-1-"),
    "trainingrun-registered": ("Healthy", "Registered: Registered digits-classifier version 1"),
    "trainingrun-gate-failed": ("Degraded", "GateFailed: accuracy = 0."),
    "trainingrun-backend-unavailable": ("Degraded", "PipelineBackendUnavailable: Pipeline backend 'kfp'"),
    "trainingrun-spec-changed": ("Progressing", "observe generation 2"),
    "modeldeployment-creating": ("Progressing", "Creating: SeldonDeployment digits is Creating"),
    "modeldeployment-canary": ("Progressing", "Canary version 2 at 20% (step 1 of 2); CanaryProgressing: Serving"),
    "modeldeployment-available": ("Healthy", "Available: Serving version 1 100%"),
    "modeldeployment-promoted": ("Healthy", "CanaryPromoted: Version 2 promoted"),
    "modeldeployment-rolled-back": ("Degraded", "CanaryRolledBack: Version 3 rolled back"),
    "modeldeployment-serving-failed": ("Degraded", "ServingFailed: container model: CrashLoopBackOff"),
    "modeldeployment-model-not-found": ("Degraded", "ModelNotFound: Model digits-classifier has no registered"),
    "modeldeployment-spec-changed": ("Progressing", "observe generation 2"),
    "driftmonitor-checking": ("Progressing", "Checking: Check plain-"),
    "driftmonitor-no-drift": ("Healthy", "NoDrift: "),
    "driftmonitor-insufficient-data": ("Healthy", "InsufficientData: 0 samples in the window"),
    "driftmonitor-drift-detected": ("Healthy", "DriftDetected: 51 of 64 columns drifted"),
    "driftmonitor-retraining": ("Progressing", "DriftDetected: 51 of 64", "retrain loop-retrain-1: training"),
    "driftmonitor-retrained": ("Healthy", "DriftDetected: 51 of 64", "retrain loop-retrain-1: promoted"),
    "driftmonitor-deployment-not-found": ("Degraded", "DeploymentNotFound: ModelDeployment digits does not exist"),
    "driftmonitor-spec-changed": ("Progressing", "observe generation 2"),
}


@pytest.fixture(scope="module")
def harness() -> Path:
    """The runner, built once (cached by source hash); a missing Go fails with the builder's words."""
    built = subprocess.run(
        [str(ROOT / "hack/build-argocd-health.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    if built.returncode != 0:
        pytest.fail(f"building tests/argocd failed (Go 1.26 is needed):\n{built.stderr}")
    return Path(built.stdout.strip().splitlines()[-1])


def health(harness: Path, script: Path, obj: Path | str) -> dict[str, Any]:
    args = [str(harness), str(script)] + ([str(obj)] if isinstance(obj, Path) else [])
    result = subprocess.run(
        args, input=obj if isinstance(obj, str) else None, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("name", sorted(CASES))
def test_captured_object_gets_its_health(harness: Path, name: str) -> None:
    fixture = FIXTURES / f"{name}.yaml"
    kind = load_yaml(fixture)["kind"]
    expected, *parts = CASES[name]
    found = health(harness, SCRIPTS / f"{kind}.lua", fixture)
    assert found["status"] == expected, found
    assert all(part in found["message"] for part in parts), found


def test_every_fixture_has_a_case_and_says_where_it_came_from() -> None:
    fixtures = sorted(p.stem for p in FIXTURES.glob("*.yaml"))
    assert fixtures == sorted(CASES)
    for name in fixtures:
        assert (FIXTURES / f"{name}.yaml").read_text().startswith("# Captured from a real run of tests/"), name


def test_each_kind_is_covered_healthy_progressing_degraded_and_unobserved() -> None:
    for kind in ("dataset", "trainingrun", "modeldeployment", "driftmonitor"):
        cases = {name: status for name, (status, *_) in CASES.items() if name.startswith(f"{kind}-")}
        assert {"Healthy", "Progressing", "Degraded"} <= set(cases.values()), kind
        newer = [load_yaml(FIXTURES / f"{name}.yaml") for name in cases]
        assert any(o["metadata"]["generation"] > o.get("status", {}).get("observedGeneration", 0) for o in newer)


def test_scripts_run_without_lua_standard_libraries(harness: Path, tmp_path: Path) -> None:
    """As in Argo CD, a custom check gets base and table only: string.* fails here as it would there."""
    script = tmp_path / "strings.lua"
    script.write_text('return {status = string.upper("healthy")}\n')
    result = subprocess.run([str(harness), str(script)], input="{}", capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "string" in result.stderr
    for lua in SCRIPTS.glob("*.lua"):
        code = re.sub(r"--.*", "", lua.read_text())  # comments may name them
        assert not re.search(r"\b(string|math|os|io)\.|:\w+\(", code), lua.name


def test_an_object_from_stdin_as_json(harness: Path) -> None:
    obj = {"kind": "Dataset", "metadata": {"generation": 3}, "status": {"observedGeneration": 2}}
    found = health(harness, SCRIPTS / "Dataset.lua", json.dumps(obj))
    assert found == {"status": "Progressing", "message": "Waiting for the Lathe operator to observe generation 3"}


def test_argocd_cm_patch_carries_the_lua_files_verbatim() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "hack/argocd-health.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    data = load_yaml(PATCH)["data"]
    assert data == {
        f"resource.customizations.health.lathe.dev_{p.stem}": p.read_text() for p in sorted(SCRIPTS.glob("*.lua"))
    }


def test_argocd_cm_patch_merges_into_an_existing_argocd_cm(kubectl: Kubectl, namespace: str) -> None:
    existing = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}, "data": {"url": "x"}}
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(existing))
    kubectl.run("patch", "configmap", "argocd-cm", "-n", namespace, "--patch-file", str(PATCH))
    data = kubectl.get("configmap", "argocd-cm", "-n", namespace)["data"]
    assert data == {"url": "x", **load_yaml(PATCH)["data"]}


def test_example_application_syncs_each_included_example_once() -> None:
    app = load_yaml(APPLICATION)
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source = app["spec"]["source"]
    assert source["directory"]["recurse"] is True and (ROOT / source["path"]).is_dir()
    patterns = source["directory"]["include"].strip("{}").split(",")
    objects = []
    for pattern in patterns:
        files = sorted((ROOT / source["path"]).glob(pattern))
        assert files, pattern
        objects += [(load_yaml(f)["kind"], load_yaml(f)["metadata"]["name"]) for f in files]
    assert len(objects) == len(set(objects)), objects  # Argo CD refuses one object twice in an app
    assert {kind for kind, _ in objects} == {"Dataset", "TrainingRun", "ModelDeployment", "DriftMonitor"}

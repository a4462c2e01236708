"""``kubectl lathe``: every command run through kubectl's plugin lookup against real objects from a real operator.

A Dataset is ingested twice (the second version darker), a TrainingRun trains on it with
kfp.local and registers a model with its lineage, a DriftMonitor compares the two versions,
and ModelDeployments serve registered versions with canaries; then each command's output
is checked against the objects, the store and what serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lathe_pipelines.sample_data import digits
from tests.conftest import ROOT, eventually
from tests.integration.conftest import Kubectl
from tests.integration.registry import MODEL, registry, store, trained
from tests.integration.test_model_deployment_local import base, local_operator, ready  # noqa: F401  (fixture)
from tests.integration.test_model_server import call
from tests.servers.controlplane import ControlPlane
from tests.servers.s3 import S3Server

pytestmark = pytest.mark.timeout(900)
LONG = {"window": "1h", "minRequests": 1}  # the analysis never moves these canaries: people do


@pytest.fixture
def plugin(
    control_plane: ControlPlane, kubectl: Kubectl, s3: S3Server, namespace: str, local_operator: Any, tmp_path: Path
) -> Iterator[Any]:
    """``kubectl lathe ...`` as a user runs it: kubectl finds ``kubectl-lathe`` on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "kubectl-lathe"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m lathe_operator.plugin.main "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    shutil.copy(control_plane.kubectl, bin_dir / "kubectl")
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copy(control_plane.kubeconfig, kubeconfig)
    kubectl.run("config", f"--kubeconfig={kubeconfig}", "set-context", "--current", f"--namespace={namespace}")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("core", "operator", "pipelines", "serving")),
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_LOCAL_DIR": str(local_operator.local_dir),
    }

    def run(*args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["kubectl", "lathe", *args], capture_output=True, text=True, timeout=120, env={**env, **extra}
        )
        if check:
            assert done.returncode == 0, f"kubectl lathe {' '.join(args)}: {done.stdout}{done.stderr}"
        if os.environ.get("LATHE_PLUGIN_TRANSCRIPT"):  # real output for docs/cli.md
            with open(os.environ["LATHE_PLUGIN_TRANSCRIPT"], "a") as transcript:
                transcript.write(f"$ kubectl lathe {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        return done

    run.env = env  # type: ignore[attr-defined]
    yield run


def _csv(frame: Any) -> str:
    return frame.to_csv(index=False)


def _apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(objects))


def _status(kubectl: Kubectl, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(kubectl.get(kind, name, "-n", namespace).get("status") or {})


def _condition(kubectl: Kubectl, namespace: str, kind: str, name: str) -> tuple[str, str]:
    found = next(
        (c for c in _status(kubectl, namespace, kind, name).get("conditions") or [] if c["type"] == "Ready"),
        {"status": "", "reason": ""},
    )
    return found["status"], found["reason"]


def _deployment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"name": MODEL, "version": 1}, **spec},
    }


def test_the_plugin_reads_every_kind_from_cluster_and_store(
    kubectl: Kubectl, namespace: str, s3: S3Server, local_operator: Any, plugin: Any
) -> None:
    frame = digits().iloc[:400]
    darker = frame.copy()
    pixels = [c for c in frame.columns if c != "label"]
    darker[pixels] = (darker[pixels] / 2).round()
    kubectl.run(
        "create", "configmap", "digits", "-n", namespace,
        f"--from-literal=plain.csv={_csv(frame)}", f"--from-literal=darker.csv={_csv(darker)}",
    )  # fmt: skip
    local_operator()
    dataset = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "small"},
        "spec": {"source": {"configMap": {"name": "digits", "key": "plain.csv"}}, "target": "label"},
    }
    _apply(kubectl, namespace, dataset)
    waited = plugin("wait", "ds/small", "--for=ready", "--timeout=3m")
    assert "dataset.lathe.dev/small condition met" in waited.stdout
    first = _status(kubectl, namespace, "dataset", "small")["currentVersion"]
    run = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "small-mlp"},
        "spec": {
            "dataset": {"name": "small", "version": first},
            "model": {"name": "small-clf", "type": "mlp", "hyperparameters": {"hidden": [32], "epochs": 4}},
            "gates": [{"metric": "accuracy", "min": 0.3}],
            "pipeline": {"backend": "local"},
        },
    }
    _apply(kubectl, namespace, run)
    dataset["spec"]["source"]["configMap"]["key"] = "darker.csv"
    _apply(kubectl, namespace, dataset)
    eventually(lambda: _status(kubectl, namespace, "dataset", "small").get("currentVersion") not in (None, first), 180)
    second = _status(kubectl, namespace, "dataset", "small")["currentVersion"]
    monitor = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "small-drift"},
        "spec": {
            "source": {"type": "dataset", "dataset": {"name": "small", "version": second}},
            "reference": {"name": "small", "version": first},
            "interval": "1h",
            "window": {"minSamples": 50},
        },
    }
    _apply(kubectl, namespace, monitor)
    waited = plugin("wait", "tr/small-mlp", "--timeout=5m")
    assert "trainingrun.lathe.dev/small-mlp condition met (Registered" in waited.stdout
    eventually(lambda: _status(kubectl, namespace, "driftmonitor", "small-drift").get("reportUri"), 180)

    # status: every kind, its figure, and -o json is the objects themselves
    shown = plugin("status").stdout
    for text in ("Datasets (ds)", "small", "TrainingRuns (tr)", "small-clf:1", "accuracy=", "DriftMonitors (dm)"):
        assert text in shown, shown
    assert (
        "Drift" in shown and second.removeprefix("sha256:")[:12] in shown and "\x1b[" not in shown
    )  # piped: no colour
    listed = json.loads(plugin("status", "-o", "json").stdout)
    assert {(o["kind"], o["metadata"]["name"]) for o in listed["items"]} == {
        ("Dataset", "small"),
        ("TrainingRun", "small-mlp"),
        ("DriftMonitor", "small-drift"),
    }
    assert listed["items"][0]["status"] == _status(kubectl, namespace, "dataset", "small")
    coloured = plugin("status", "--color=always").stdout
    assert "\x1b[32mTrue" in coloured
    everywhere = plugin("status", "-A").stdout
    assert "NAMESPACE" in everywhere and namespace in everywhere

    # the registry: versions with figures and gates, one card with its lineage
    models = plugin("models").stdout
    assert "small-clf" in models and MODEL not in models
    versions = plugin("models", "small-clf").stdout
    assert "1/1" in versions and "small-mlp" in versions and "small@" + first.removeprefix("sha256:")[:12] in versions
    card = plugin("models", "small-clf", "1").stdout
    for text in (
        "Model:         small-clf version 1",
        "accuracy",
        f"Dataset:       small {first}",
        "small-mlp",
        "Seed:",
    ):
        assert text in card, card
    assert yaml.safe_load(plugin("models", "small-clf", "-o", "yaml").stdout)[0]["version"] == 1
    as_json = json.loads(plugin("models", "small-clf", "1", "-o", "json").stdout)
    assert as_json["dataset"]["version"] == first and as_json["run"]["trainingRun"] == "small-mlp"
    assert as_json["sha256"] == _status(kubectl, namespace, "trainingrun", "small-mlp")["model"]["sha256"]

    # data versions, and what changed between them
    versions = plugin("datasets", "small").stdout
    assert first.removeprefix("sha256:")[:12] in versions and second.removeprefix("sha256:")[:12] in versions
    assert "passed" in versions and "400" in versions
    diff = plugin("datasets", "small", "--diff", first[7:15], second[7:15]).stdout
    assert "--- " + first[7:19] in diff and "pixel_3_4" in diff and "sd" in diff
    compared = json.loads(plugin("datasets", "small", "--diff", first[7:15], second[7:15], "-o", "json").stdout)
    mean = compared["columns"]["pixel_3_4"]["figures"]["mean"]
    assert mean["after"] == pytest.approx(darker["pixel_3_4"].mean()) and mean["before"] > mean["after"]

    # logs of the local runs, the drift report
    logs = plugin("logs", "tr", "small-mlp").stdout
    assert "epoch" in logs.lower() or "train" in logs.lower(), logs[-2000:]
    assert plugin("logs", "ds", "small").stdout.strip()
    # the monitor keeps checking: the printed report is the one status named just before or just after
    before = _status(kubectl, namespace, "driftmonitor", "small-drift")["reportUri"]
    printed = plugin("report", "dm", "small-drift").stdout.strip()
    after = _status(kubectl, namespace, "driftmonitor", "small-drift")["reportUri"]
    assert printed in (before, after), (printed, before, after)
    page = Path(plugin.env["LATHE_LOCAL_DIR"]).parent / "report.html"  # type: ignore[attr-defined]
    plugin("report", "dm", "small-drift", "-o", str(page))
    assert "<html" in page.read_text().lower()

    # bad input: kubectl-style NotFound, unknown kinds, an unreachable store, no context
    missing = plugin("get", "md", "nope", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): modeldeployments.lathe.dev "nope" not found' in missing.stderr
    unknown = plugin("logs", "pods", "x", check=False)
    assert unknown.returncode == 1 and 'doesn\'t have a resource type "pods"' in unknown.stderr
    away = plugin("datasets", "small", check=False, LATHE_STORE_ENDPOINT="127.0.0.1:1")
    assert away.returncode == 0 and "127.0.0.1:1" in away.stdout and "status.history" in away.stdout
    assert first.removeprefix("sha256:")[:12] in away.stdout  # the cluster's record is still shown
    nowhere = plugin("status", check=False, KUBECONFIG=str(Path(plugin.env["LATHE_LOCAL_DIR"]) / "none"))  # type: ignore[attr-defined]
    assert nowhere.returncode == 1 and "no current context" in nowhere.stderr

    # a store writer swaps model.onnx and rewrites its card to match: the TrainingRun's record refuses it
    bucket = store(s3, namespace)
    other = trained()[0]  # a real model of the same shape, which would serve fine
    card = json.loads(bucket.get("models/" + namespace + "/small-clf/1/model.json"))
    bucket.put(f"models/{namespace}/small-clf/1/model.onnx", other)
    bucket.put(
        f"models/{namespace}/small-clf/1/model.json",
        json.dumps({**card, "sha256": hashlib.sha256(other).hexdigest()}).encode(),
    )
    _apply(kubectl, namespace, _deployment("swapped", model={"name": "small-clf", "version": 1}))
    eventually(lambda: _condition(kubectl, namespace, "modeldeployment", "swapped") == ("False", "ServingFailed"), 120)
    conditions = _status(kubectl, namespace, "modeldeployment", "swapped")["conditions"]
    said = next(c["message"] for c in conditions if c["type"] == "Ready")
    assert "failed to start 3 times" in said and "does not match the sha256 its TrainingRun recorded" in said, said


def test_promote_abort_and_undo_change_what_serves(
    kubectl: Kubectl, namespace: str, s3: S3Server, local_operator: Any, plugin: Any
) -> None:
    models = registry(s3, namespace, broken=False)
    local_operator()
    canary = {"version": 2, "steps": [10, 50, 100], "analysis": LONG}
    _apply(kubectl, namespace, _deployment("web", canary=canary), _deployment("plain"))
    eventually(lambda: ready(kubectl, namespace, "web") == ("True", "CanaryProgressing"), timeout=120)
    view = plugin("get", "md", "web").stdout
    for text in ("Canary:        version 2 Progressing, step 1 of 3 (10%)", "[10] → 50 → 100", "History:"):
        assert text in view, view
    assert json.loads(plugin("get", "md", "web", "-o", "json").stdout)["status"]["canary"]["percent"] == 10

    refused = plugin("promote", "md", "plain", check=False)
    assert refused.returncode == 1 and "there is no canary" in refused.stderr
    assert plugin("undo", "md", "web", check=False).stderr.count("no promotion to undo") == 1

    stepped = plugin("promote", "md", "web").stdout
    assert "Step version 2" in stepped and "version 2 50%" in stepped
    entry = _status(kubectl, namespace, "modeldeployment", "web")["history"][-1]
    assert entry["action"] == "Step" and entry["by"] and entry["percent"] == 50
    events = kubectl.get("events", "-n", namespace, "--field-selector", "reason=CanaryStep")["items"]
    assert any("by hand" in e["message"] for e in events)

    plugin("promote", "md", "web", "--full")
    url = base(_status(kubectl, namespace, "modeldeployment", "web")["endpoint"])
    row = {"data": {"ndarray": [models["rows"][0].tolist()]}}
    eventually(lambda: call(url, "/api/v1.0/predictions", row)[1]["meta"]["requestPath"]["model"] == f"{MODEL}:2", 60)
    assert plugin("get", "md", "web").stdout.count("Promoted") >= 1

    undone = plugin("undo", "md", "web").stdout
    assert "Rollback version 2" in undone
    eventually(lambda: call(url, "/api/v1.0/predictions", row)[1]["meta"]["requestPath"]["model"] == f"{MODEL}:1", 60)
    assert _status(kubectl, namespace, "modeldeployment", "web")["stable"]["version"] == 1

    _apply(kubectl, namespace, _deployment("other", canary=canary))
    eventually(lambda: ready(kubectl, namespace, "other") == ("True", "CanaryProgressing"), timeout=120)
    plugin("abort", "md", "other")
    assert ready(kubectl, namespace, "other") == ("True", "CanaryRolledBack")
    assert _status(kubectl, namespace, "modeldeployment", "other")["traffic"] == [{"version": 1, "percent": 100}]


def test_get_watch_redraws_a_canary_step_in_a_terminal(
    kubectl: Kubectl, namespace: str, s3: S3Server, local_operator: Any, plugin: Any, tmp_path: Path
) -> None:
    registry(s3, namespace, broken=False)
    local_operator()
    _apply(kubectl, namespace, _deployment("web", canary={"version": 2, "analysis": LONG}))
    eventually(lambda: ready(kubectl, namespace, "web") == ("True", "CanaryProgressing"), timeout=120)
    session = f"lathe-{namespace}"
    env = plugin.env  # type: ignore[attr-defined]
    exports = " ".join(f"{k}='{env[k]}'" for k in ("PATH", "KUBECONFIG", "PYTHONPATH") if k in env)
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "160",
            "-y",
            "50",
            f"env {exports} kubectl lathe get md web --watch",
        ],
        check=True,
        env={**os.environ, "TERM": "xterm-256color"},
    )

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    try:
        eventually(lambda: "step 1 of 3 (10%)" in screen(), timeout=30)
        plugin("promote", "md", "web")
        eventually(lambda: "step 2 of 3 (50%)" in screen(), timeout=30)
        assert "step 1 of 3" not in screen()  # redrawn in place, not appended
        time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)

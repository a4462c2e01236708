"""The operator as a subprocess against the real API server: status, Events, children, restarts."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl, OperatorProcess
from tests.servers.controlplane import ControlPlane
from tests.servers.process import free_port
from tests.servers.prometheus import Prometheus

DATASET = load_yaml(ROOT / "examples/01-dataset/dataset.yaml")


@pytest.fixture
def start_operator(control_plane: ControlPlane, namespace: str, kubectl: Kubectl, tmp_path: Path) -> Iterator[Any]:
    # The example Dataset's credentials Secret, opted in: without it the operator starts no ingest Job
    keys = ("--from-literal=accessKey=a", "--from-literal=secretKey=s")
    kubectl.run("create", "secret", "generic", "store-creds", "-n", namespace, *keys)
    kubectl.run("label", "secret", "store-creds", "-n", namespace, "lathe.dev/credentials=true")
    started: list[OperatorProcess] = []

    def start(metrics_port: int = 0, liveness: str = "") -> OperatorProcess:
        process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", metrics_port, liveness=liveness)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill(signal.SIGTERM)


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def jobs(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return list(kubectl.get("jobs", "-n", namespace, "-l", "lathe.dev/dataset=digits")["items"])


def test_dataset_gets_status_event_and_one_owned_job(kubectl: Kubectl, namespace: str, start_operator: Any) -> None:
    start_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(DATASET))

    def reconciled() -> dict[str, Any]:
        obj = kubectl.get("dataset", "digits", "-n", namespace)
        assert obj["status"]["observedGeneration"] == 1
        return obj

    obj = eventually(reconciled)
    ready = ready_condition(obj)
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("False", "Ingesting", 1)
    assert {c["type"] for c in obj["status"]["conditions"]} == {"Ready", "Progressing", "Degraded"}
    assert obj["status"]["phase"] == "Progressing"
    assert "kopf" not in obj["status"]  # progress lives in annotations, status stays typed

    [job] = jobs(kubectl, namespace)
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Dataset", "digits", obj["metadata"]["uid"])
    assert job["metadata"]["name"] == obj["status"]["lastRun"]["name"]
    assert obj["status"]["lastRun"]["outcome"] == "Running"

    def events() -> set[str]:
        found = kubectl.get("events", "-n", namespace, "--field-selector", "involvedObject.name=digits")["items"]
        reasons = {e["reason"] for e in found if e["involvedObject"]["kind"] == "Dataset"}
        assert {"StartedIngest", "Ingesting"} <= reasons
        return reasons

    eventually(events)


def test_sigkill_and_restart_create_no_duplicate_job(
    kubectl: Kubectl, namespace: str, start_operator: Any, tmp_path: Path
) -> None:
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(DATASET))
    for _ in range(3):  # killed mid-flight, then as soon as the Job exists, then after status
        operator = start_operator()
        eventually(lambda: jobs(kubectl, namespace), timeout=60)
        operator.kill(signal.SIGKILL)
    log = tmp_path / "operator.log"
    before = log.read_text().count("Handler 'reconcile_dataset")
    start_operator()
    eventually(lambda: log.read_text().count("Handler 'reconcile_dataset") > before, timeout=60)
    assert len(jobs(kubectl, namespace)) == 1
    obj = kubectl.get("dataset", "digits", "-n", namespace)
    assert obj["status"]["observedGeneration"] == 1


def test_spec_change_is_observed_and_deleting_collects_children(
    kubectl: Kubectl, namespace: str, start_operator: Any
) -> None:
    start_operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(DATASET))
    eventually(lambda: kubectl.get("dataset", "digits", "-n", namespace)["status"]["observedGeneration"] == 1)
    kubectl.run(
        "patch", "dataset", "digits", "-n", namespace, "--type=merge", "-p", '{"spec":{"retention":{"keep":3}}}'
    )
    eventually(lambda: kubectl.get("dataset", "digits", "-n", namespace)["status"]["observedGeneration"] == 2)
    assert len(jobs(kubectl, namespace)) == 2  # one ingest per spec: the new spec gets its own Job
    kubectl.run("delete", "dataset", "digits", "-n", namespace, "--wait=true")
    eventually(lambda: jobs(kubectl, namespace) == [], timeout=60)  # kube-controller-manager's garbage collector


@pytest.mark.parametrize(
    ("path", "reason", "phase"),
    [
        ("02-training-run/trainingrun.yaml", "PipelineBackendUnavailable", "Pending"),  # no KFP API configured here
        ("04-drift-monitor/driftmonitor.yaml", "DeploymentNotFound", "Failed"),  # its deployment is not here
    ],
)
def test_what_cannot_run_here_says_why(
    kubectl: Kubectl, namespace: str, start_operator: Any, path: str, reason: str, phase: str
) -> None:
    start_operator()
    manifest = load_yaml(ROOT / "examples" / path)
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    kind, name = manifest["kind"].lower(), manifest["metadata"]["name"]
    obj = eventually(
        lambda: (
            kubectl.get(kind, name, "-n", namespace).get("status", {}).get("conditions")
            and kubectl.get(kind, name, "-n", namespace)
        )
    )
    ready = ready_condition(obj)
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert obj["status"]["observedGeneration"] == 1 and obj["status"]["phase"] == phase
    assert ready["message"]


def test_prometheus_scrapes_the_operator(
    kubectl: Kubectl, namespace: str, start_operator: Any, prometheus: Prometheus
) -> None:
    port = free_port()
    start_operator(metrics_port=port)
    prometheus.scrape([f"127.0.0.1:{port}"])
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(DATASET))

    def scraped() -> float:
        result = prometheus.query('sum(lathe_reconcile_total{kind="Dataset",result="ok"})')
        return float(result[0]["value"][1]) if result else 0.0

    assert eventually(scraped, timeout=60) >= 1


def test_liveness_endpoint(start_operator: Any) -> None:
    import json
    import urllib.request

    port = free_port()
    start_operator(liveness=f"http://127.0.0.1:{port}/healthz")

    def alive() -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                assert response.status == 200
                return dict(json.load(response))
        except OSError:  # not listening yet
            return {}

    assert "kube" in eventually(alive, timeout=60)  # our probe, next to kopf's own

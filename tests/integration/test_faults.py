"""SIGKILL of the operator at each step of each kind's reconcile, then a restart: nothing runs twice.

Each case arms one failpoint (``lathe_operator.failpoints``): the operator kills itself right after
a side effect (a run started, a pipeline submitted, a server started) and before its status is
written. A second operator without the failpoint takes over; the test waits for the object's end
state and counts what ran: every local run appends a ``--- started`` line to its log, the registry
lists its versions, the store its Dataset versions, /proc the model servers. Slow: run by
``make test-all`` (``-m faults``), not ``make test``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_pipelines.sample_data import digits
from tests.conftest import eventually
from tests.integration.conftest import Kubectl, OperatorProcess, stop_local_servers
from tests.integration.registry import MODEL, registry, store
from tests.integration.test_drift_monitor import drift_status
from tests.integration.test_retrain_loop import MONITOR, drifted_traffic, last_retrain
from tests.servers.controlplane import ControlPlane
from tests.servers.prometheus import Prometheus
from tests.servers.s3 import S3Server

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]
Start = Callable[..., OperatorProcess]


@pytest.fixture
def operator(control_plane: ControlPlane, s3: S3Server, namespace: str, tmp_path: Path) -> Iterator[Start]:
    """``operator(failpoint)`` starts a local-mode operator, armed at ``failpoint`` when one is given."""
    local = tmp_path / "local"
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_LOCAL_DIR": str(local),
    }
    started: list[OperatorProcess] = []

    def start(failpoint: str = "", verbose: bool = False) -> OperatorProcess:
        armed = {"LATHE_FAILPOINTS": failpoint} if failpoint else {}
        log = tmp_path / "operator.log"
        started.append(OperatorProcess(control_plane, namespace, log, extra_env={**env, **armed}, verbose=verbose))
        return started[-1]

    start.local = local  # type: ignore[attr-defined]
    yield start
    for process in started:
        process.kill(signal.SIGTERM)
    stop_local_servers(local)


def killed_at(process: OperatorProcess, timeout: float = 240) -> None:
    """Wait until the armed operator killed itself at its failpoint."""
    eventually(lambda: process.popen.poll() == -signal.SIGKILL, timeout=timeout)


def starts(local: Path, namespace: str) -> dict[str, int]:
    """How often each local run of the namespace was started, from the lines its log gains per start."""
    logs = (local / ".runs").glob(f"{namespace}-*.log")
    return {
        log.stem.removeprefix(f"{namespace}-"): log.read_text(errors="replace").count("--- started") for log in logs
    }


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))


def condition(kubectl: Kubectl, namespace: str, kind: str, name: str) -> tuple[str, str]:
    status = kubectl.get(kind, name, "-n", namespace).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
    return ready.get("status", ""), ready.get("reason", "")


def dataset(kubectl: Kubectl, namespace: str, name: str = "small", configmap: str = "digits") -> dict[str, Any]:
    frame = digits().iloc[:300]
    csv = frame.to_csv(index=False)
    kubectl.run("create", "configmap", configmap, "-n", namespace, f"--from-literal=data.csv={csv}")
    return {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {"source": {"configMap": {"name": configmap, "key": "data.csv"}}, "target": "label"},
    }


def ingested(kubectl: Kubectl, namespace: str) -> str:
    eventually(lambda: condition(kubectl, namespace, "dataset", "small")[0] == "True", timeout=180)
    return str(kubectl.get("dataset", "small", "-n", namespace)["status"]["currentVersion"])


def test_killed_after_starting_an_ingest(kubectl: Kubectl, namespace: str, s3: S3Server, operator: Start) -> None:
    armed = operator("dataset.ingest-started")
    apply(kubectl, namespace, dataset(kubectl, namespace))
    killed_at(armed)
    operator()
    version = ingested(kubectl, namespace)
    runs = starts(operator.local, namespace)  # type: ignore[attr-defined]
    assert list(runs.values()) == [1], runs  # the ingest the first operator started, found again
    assert DatasetVersions(store(s3, namespace), namespace, "small").versions() == [version]


def test_killed_after_retention_deleted_a_version(
    kubectl: Kubectl, namespace: str, s3: S3Server, operator: Start
) -> None:
    armed = operator("dataset.versions-deleted")
    manifest = dataset(kubectl, namespace)
    manifest["spec"]["retention"] = {"keep": 1}
    apply(kubectl, namespace, manifest)
    first = ingested(kubectl, namespace)
    darker = digits().iloc[:300].copy()
    pixels = [c for c in darker.columns if c != "label"]
    darker[pixels] = (darker[pixels] / 2).round()
    csv = darker.to_csv(index=False)
    kubectl.run("create", "configmap", "darker", "-n", namespace, f"--from-literal=data.csv={csv}")
    manifest["spec"]["source"]["configMap"]["name"] = "darker"
    apply(kubectl, namespace, manifest)  # a second version: retention deletes the first, then the kill
    killed_at(armed)
    operator()

    def settled() -> str:
        status = kubectl.get("dataset", "small", "-n", namespace)["status"]
        assert status["currentVersion"] != first and condition(kubectl, namespace, "dataset", "small")[0] == "True"
        return str(status["currentVersion"])

    second = eventually(settled, timeout=180)
    assert DatasetVersions(store(s3, namespace), namespace, "small").versions() == [second]
    runs = starts(operator.local, namespace)  # type: ignore[attr-defined]
    assert sorted(runs.values()) == [1, 1], runs  # one ingest per version, none repeated


def test_killed_after_submitting_a_pipeline_run(
    kubectl: Kubectl, namespace: str, s3: S3Server, operator: Start
) -> None:
    armed = operator("training-run.submitted")
    apply(kubectl, namespace, dataset(kubectl, namespace))
    version = ingested(kubectl, namespace)
    run = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "small-mlp"},
        "spec": {
            "dataset": {"name": "small", "version": version},
            "model": {"name": "small-clf", "type": "mlp", "hyperparameters": {"hidden": [16], "epochs": 2}},
            "pipeline": {"backend": "local"},
        },
    }
    apply(kubectl, namespace, run)
    killed_at(armed)
    operator()
    eventually(lambda: condition(kubectl, namespace, "trainingrun", "small-mlp") == ("True", "Registered"), 360)
    runs = starts(operator.local, namespace)  # type: ignore[attr-defined]
    assert sorted(runs.values()) == [1, 1], runs  # one ingest, one pipeline run
    assert ModelRegistry(store(s3, namespace), namespace, "small-clf").versions() == [1]
    status = kubectl.get("trainingrun", "small-mlp", "-n", namespace)["status"]
    assert status["model"]["version"] == 1 and status["runId"]


def servers(local: Path) -> list[int]:
    """Model server processes serving from ``local`` (their command names its deployment file)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and b"lathe_serving" in cmdline and str(local).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_killed_after_starting_a_model_server(kubectl: Kubectl, namespace: str, s3: S3Server, operator: Start) -> None:
    registry(s3, namespace)
    armed = operator("model-deployment.served")
    deployment = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "digits"},
        "spec": {"model": {"name": MODEL, "version": 1}},
    }
    apply(kubectl, namespace, deployment)
    killed_at(armed)
    first = servers(operator.local)  # type: ignore[attr-defined]
    assert len(first) == 1, first
    operator()
    eventually(lambda: condition(kubectl, namespace, "modeldeployment", "digits") == ("True", "Available"), 120)
    assert servers(operator.local) == first  # type: ignore[attr-defined]  # kept, not started again


def test_killed_after_starting_an_edge_bundle_run(
    kubectl: Kubectl, namespace: str, s3: S3Server, operator: Start
) -> None:
    registry(s3, namespace)
    armed = operator("model-deployment.run-started")
    deployment = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "edge"},
        "spec": {"model": {"name": MODEL, "version": 1}, "mode": "edge", "edge": {"quantize": False}},
    }
    apply(kubectl, namespace, deployment)
    killed_at(armed)
    operator()
    eventually(lambda: condition(kubectl, namespace, "modeldeployment", "edge") == ("True", "Bundled"), 180)
    runs = starts(operator.local, namespace)  # type: ignore[attr-defined]
    assert list(runs.values()) == [1], runs  # the bundle run the first operator started, found again
    bundles = store(s3, namespace).list(f"bundles/{namespace}/edge/")
    assert sum(k.endswith("bundle.tar.gz") for k in bundles) == 1, bundles


def test_killed_after_starting_a_drift_check(kubectl: Kubectl, namespace: str, s3: S3Server, operator: Start) -> None:
    armed = operator("drift-monitor.check-started")
    apply(kubectl, namespace, dataset(kubectl, namespace))
    version = ingested(kubectl, namespace)
    monitor = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "small-drift"},
        "spec": {
            "source": {"type": "dataset", "dataset": {"name": "small", "version": version}},
            "reference": {"name": "small", "version": version},
            "interval": "1h",
            "window": {"minSamples": 50},
        },
    }
    apply(kubectl, namespace, monitor)
    killed_at(armed)
    operator()

    def checked() -> dict[str, Any]:
        status = kubectl.get("driftmonitor", "small-drift", "-n", namespace).get("status") or {}
        assert status.get("verdict") == "NoDrift", status
        return status

    eventually(checked, timeout=180)
    runs = starts(operator.local, namespace)  # type: ignore[attr-defined]
    assert sorted(runs.values()) == [1, 1], runs  # one ingest, one drift check


@pytest.fixture
def own_store() -> Iterator[S3Server]:
    """An S3 server of this test's own, to stop and start again on its port with its data."""
    server = S3Server().start()
    yield server
    server.stop()


def test_the_store_stopped_for_30_seconds_mid_ingest(
    kubectl: Kubectl, namespace: str, control_plane: ControlPlane, own_store: S3Server, tmp_path: Path
) -> None:
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": own_store.endpoint,
        "LATHE_STORE_ACCESS_KEY": own_store.access_key,
        "LATHE_STORE_SECRET_KEY": own_store.secret_key,
        "LATHE_LOCAL_DIR": str(tmp_path / "local"),
    }
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
    try:
        apply(kubectl, namespace, dataset(kubectl, namespace))
        eventually(lambda: sum(starts(tmp_path / "local", namespace).values()) == 1, timeout=60)
        assert own_store.process is not None
        own_store.process.stop()  # the ingest is reading and validating: its writes will find no store

        def said() -> str:
            status = kubectl.get("dataset", "small", "-n", namespace).get("status") or {}
            ready = next(c for c in status.get("conditions") or [] if c["type"] == "Ready")
            assert ready["status"] == "False" and own_store.endpoint in ready["message"], ready
            return str(ready["reason"])

        reason = eventually(said, timeout=30)
        time.sleep(max(0.0, 30 - 5))
        assert said() == reason and process.popen.poll() is None  # still stated, and the operator still up
        own_store.start()
        version = ingested(kubectl, namespace)
        found = DatasetVersions(store(own_store, namespace), namespace, "small").versions()
        assert found == [version], found  # no partial version, no second one
        status = kubectl.get("dataset", "small", "-n", namespace)["status"]
        assert [h["version"] for h in status["history"] if h.get("version")] == [version]
    finally:
        process.kill(signal.SIGTERM)


def test_the_api_server_restarted_under_the_operator(
    kubectl: Kubectl, namespace: str, control_plane: ControlPlane, operator: Start
) -> None:
    running = operator()
    apply(kubectl, namespace, dataset(kubectl, namespace))
    first = ingested(kubectl, namespace)
    control_plane.restart_apiserver(down=10)
    second = dataset(kubectl, namespace, name="after", configmap="digits-after")
    apply(kubectl, namespace, second)  # seen only if the operator's watches resumed
    eventually(lambda: condition(kubectl, namespace, "dataset", "after")[0] == "True", timeout=180)
    assert kubectl.get("dataset", "after", "-n", namespace)["status"]["currentVersion"] == first  # same rows
    assert running.popen.poll() is None  # the same operator, not a restarted one


def test_a_canary_waits_while_prometheus_is_down_then_promotes_once_through_a_crash(
    kubectl: Kubectl, namespace: str, s3: S3Server, control_plane: ControlPlane, tmp_path: Path
) -> None:
    from tests.integration.test_model_deployment_local import Traffic, status

    models = registry(s3, namespace)
    prometheus = Prometheus().start()  # this test's own, to stop and start again on its port with its data
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_PROMETHEUS_URL": prometheus.url,
        "LATHE_LOCAL_DIR": str(tmp_path / "local"),
    }
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
    client = None
    try:
        analysis = {"window": "8s", "minRequests": 20, "maxErrorRate": 0.05}
        canary = {"version": 2, "steps": [50, 100], "analysis": analysis}
        deployment = {
            "apiVersion": "lathe.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "digits"},
            "spec": {"model": {"name": MODEL, "version": 1}, "canary": canary},
        }
        apply(kubectl, namespace, deployment)
        eventually(
            lambda: condition(kubectl, namespace, "modeldeployment", "digits") == ("True", "CanaryProgressing"), 90
        )
        endpoint = status(kubectl, namespace, "digits")["endpoint"]
        assert prometheus.process is not None
        prometheus.process.stop()  # before its first scrape of the servers: no figures at all
        client = Traffic(endpoint, models["rows"])
        client.start()

        def waiting() -> str:
            found = kubectl.get("modeldeployment", "digits", "-n", namespace)["status"]
            ready = next(c for c in found["conditions"] if c["type"] == "Ready")
            assert "waiting for metrics" in ready["message"] and prometheus.url.split("//")[1] in ready["message"]
            assert found["canary"]["phase"] == "Progressing" and found["canary"]["percent"] == 50, found["canary"]
            return str(ready["message"])

        eventually(waiting, timeout=60)
        time.sleep(20)  # more than two analysis windows with traffic flowing: still waiting, nothing promoted
        waiting()
        history = kubectl.get("modeldeployment", "digits", "-n", namespace)["status"]["history"]
        assert [h["action"] for h in history] == ["Deploy"], history
        # The operator that sees the figures come back dies right after it promotes in the registry.
        process.kill(signal.SIGTERM)
        process = OperatorProcess(
            control_plane,
            namespace,
            tmp_path / "operator.log",
            extra_env={**env, "LATHE_FAILPOINTS": "model-deployment.promoted"},
        )
        prometheus.targets = [endpoint.split("/")[2]]
        prometheus.start()
        killed_at(process, timeout=120)
        assert ModelRegistry(store(s3, namespace), namespace, MODEL).promoted() == 2
        process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
        promoted = lambda: status(kubectl, namespace, "digits")["canary"]["phase"] == "Promoted"  # noqa: E731
        eventually(promoted, timeout=120)
        history = status(kubectl, namespace, "digits")["history"]
        assert [h["action"] for h in history] == ["Deploy", "Promote"], history  # promoted once
        assert status(kubectl, namespace, "digits")["serving"] == "2:100"
    finally:
        if client is not None:
            client.stop()
        process.kill(signal.SIGTERM)
        prometheus.stop()
        stop_local_servers(tmp_path / "local")


def test_the_store_stopped_for_30_seconds_mid_registration(
    kubectl: Kubectl, namespace: str, control_plane: ControlPlane, own_store: S3Server, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": own_store.endpoint,
        "LATHE_STORE_ACCESS_KEY": own_store.access_key,
        "LATHE_STORE_SECRET_KEY": own_store.secret_key,
        "LATHE_LOCAL_DIR": str(local),
    }
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
    bucket = store(own_store, namespace)
    try:
        apply(kubectl, namespace, dataset(kubectl, namespace))
        version = ingested(kubectl, namespace)
        run = {
            "apiVersion": "lathe.dev/v1alpha1",
            "kind": "TrainingRun",
            "metadata": {"name": "small-mlp"},
            "spec": {
                "dataset": {"name": "small", "version": version},
                "model": {"name": "small-clf", "type": "mlp", "hyperparameters": {"hidden": [16], "epochs": 30}},
                "pipeline": {"backend": "local"},
            },
        }
        apply(kubectl, namespace, run)
        progress = f"models/{namespace}/small-clf/runs/"
        eventually(lambda: any(k.endswith(".progress.json") for k in bucket.list(progress)), timeout=240)
        assert own_store.process is not None
        own_store.process.stop()  # training goes on; its register step will find no store

        def registering() -> bool:
            logs = (local / ".runs").glob(f"{namespace}-small-mlp-*.log")
            return any("Waiting for the store to" in log.read_text(errors="replace") for log in logs)

        eventually(registering, timeout=240)
        time.sleep(30)  # the store stays down for 30 s of the registration
        said = condition(kubectl, namespace, "trainingrun", "small-mlp")
        assert said == ("False", "StoreUnavailable"), said
        own_store.start()
        eventually(lambda: condition(kubectl, namespace, "trainingrun", "small-mlp") == ("True", "Registered"), 240)
        assert ModelRegistry(bucket, namespace, "small-clf").versions() == [1]
        claims = [k for k in bucket.list(f"models/{namespace}/small-clf/") if k.endswith("claim.json")]
        assert len(claims) == 1, claims  # one version claimed, none half-written
        assert kubectl.get("trainingrun", "small-mlp", "-n", namespace)["status"]["model"]["version"] == 1
    finally:
        process.kill(signal.SIGTERM)


def test_killed_after_each_step_of_a_retrain(kubectl: Kubectl, namespace: str, s3: S3Server, operator: Start) -> None:
    """The closed loop (tests/integration/test_retrain_loop.py) with the operator killed after each of its
    steps in turn (harvest started, Dataset pointed, TrainingRun created, candidate offered), an armed
    operator started again after each kill: one harvest, one retrain run, one new version, promoted once."""
    models = registry(s3, namespace, broken=False)  # versions 1 and 2
    started = operator()
    drifted_traffic(kubectl, namespace, models)
    started.kill(signal.SIGTERM)
    kills = 0
    armed = operator("drift-monitor.retrain-stepped")
    apply(kubectl, namespace, MONITOR)

    def phase() -> str:
        return str((drift_status(kubectl, namespace, "loop").get("retrains") or [{}])[-1].get("phase", ""))

    while kills < 4:  # a step passed: the armed operator is gone; a new armed one takes the next step
        eventually(
            lambda process=armed: process.popen.poll() == -signal.SIGKILL or phase() in ("Promoted", "Failed"), 420
        )
        if armed.popen.poll() is None:
            break
        kills += 1
        armed = operator("drift-monitor.retrain-stepped")
    armed.kill(signal.SIGTERM)
    operator()
    record = eventually(lambda: last_retrain(kubectl, namespace) if phase() in ("Promoted", "Failed") else None, 420)
    assert record["phase"] == "Promoted" and kills >= 3, (record, kills)  # harvest, Dataset, TrainingRun at least
    assert [r["name"] for r in drift_status(kubectl, namespace, "loop")["retrains"]] == ["loop-retrain-1"]
    runs = kubectl.get("trainingruns", "-n", namespace, "-l", "lathe.dev/drift-monitor=loop")["items"]
    assert [r["metadata"]["name"] for r in runs] == ["loop-retrain-1"]
    registry_ = ModelRegistry(models["store"], namespace, MODEL)
    assert registry_.versions() == [1, 2, 3] and registry_.promoted() == 3
    harvests = {k: v for k, v in starts(operator.local, namespace).items() if k.endswith("-data")}  # type: ignore[attr-defined]
    assert list(harvests.values()) == [1], harvests
    events = kubectl.run("get", "events", "-n", namespace, "--field-selector", "reason=RetrainPromoted").stdout
    assert events.count("loop-retrain-1") == 1, events

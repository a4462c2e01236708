"""ModelDeployment online in local mode: supervised model servers, traffic split, shadow, request logs, feedback,
and a canary promoted or rolled back from a real Prometheus scraping the real server."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from lathe_core import layout
from lathe_core.registry import ModelRegistry
from tests.conftest import eventually
from tests.integration.conftest import Kubectl, OperatorProcess, stop_local_servers
from tests.integration.registry import MODEL, registry
from tests.integration.test_model_server import call
from tests.servers.controlplane import ControlPlane
from tests.servers.prometheus import Prometheus
from tests.servers.s3 import S3Server


@pytest.fixture
def local_operator(
    control_plane: ControlPlane, s3: S3Server, prometheus: Prometheus, namespace: str, tmp_path: Path
) -> Iterator[Any]:
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_PROMETHEUS_URL": prometheus.url,
        "LATHE_LOCAL_DIR": str(tmp_path / "serving"),
    }
    started: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        started.append(OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env))
        return started[-1]

    start.local_dir = tmp_path / "serving"  # type: ignore[attr-defined]
    yield start
    for process in started:
        process.kill(signal.SIGTERM)
    stop_local_servers(tmp_path / "serving")


def apply(kubectl: Kubectl, namespace: str, name: str, **spec: Any) -> None:
    manifest = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"name": MODEL, "version": 1}, **spec},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))


def status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict(kubectl.get("modeldeployment", name, "-n", namespace).get("status") or {})


def ready(kubectl: Kubectl, namespace: str, name: str) -> tuple[str, str]:
    found = next(
        (c for c in status(kubectl, namespace, name).get("conditions") or [] if c["type"] == "Ready"),
        {"status": "", "reason": ""},
    )
    return found["status"], found["reason"]


def base(endpoint: str) -> str:
    return endpoint.removesuffix("/api/v1.0/predictions")


class Traffic(threading.Thread):
    """A steady client: one-row Seldon requests until stopped; counts answers by version and code."""

    def __init__(self, endpoint: str, rows: Any) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.rows, self.stopped = endpoint, rows, threading.Event()
        self.seen: Counter[str] = Counter()

    def run(self) -> None:
        i = 0
        while not self.stopped.is_set():
            try:
                code, body = call(
                    base(self.endpoint),
                    "/api/v1.0/predictions",
                    {"data": {"ndarray": [self.rows[i % len(self.rows)].tolist()]}},
                )
                self.seen[body["meta"]["requestPath"]["model"] if code == 200 else str(code)] += 1
            except Exception:  # noqa: BLE001  (a server killed mid-answer: a cut response, counted, not fatal)
                self.seen["cut"] += 1
            i += 1
            time.sleep(0.01)

    def stop(self) -> Counter[str]:
        self.stopped.set()
        self.join(10)
        return self.seen


def test_traffic_split_shadow_request_logs_and_feedback(
    kubectl: Kubectl, namespace: str, s3: S3Server, local_operator: Any
) -> None:
    models = registry(s3, namespace)
    old = layout.log_object(layout.log_partition(namespace, "digits", datetime.now(UTC) - timedelta(days=40)), 1, 2, 3)
    models["store"].put(old, b"a request logged 40 days ago")
    local_operator()
    apply(
        kubectl,
        namespace,
        "digits",
        canary={"version": 2},
        traffic=[{"version": 1, "percent": 100}],
        shadow={"version": 3},
        logging={"sampleRate": 1.0, "retention": "30d"},
    )
    eventually(lambda: ready(kubectl, namespace, "digits") == ("True", "TrafficOverride"), timeout=90)
    eventually(lambda: not models["store"].exists(old), timeout=30)  # past spec.logging.retention: pruned
    url = base(status(kubectl, namespace, "digits")["endpoint"])
    rows = models["rows"]
    answers = [
        call(url, "/api/v1.0/predictions", {"data": {"ndarray": [rows[i].tolist()]}, "meta": {"puid": f"r{i}"}})
        for i in range(200)
    ]
    assert {code for code, _ in answers} == {200}
    assert Counter(b["meta"]["requestPath"]["model"] for _, b in answers) == {f"{MODEL}:1": 200}  # 100:0
    # The broken shadow failed every mirrored request without any caller noticing.
    metrics = call(url, "/metrics")[1]
    shadow_failures = [
        line
        for line in metrics.splitlines()
        if line.startswith("lathe_model_requests_total")
        and 'version="3"' in line
        and 'protocol="shadow"' in line
        and 'code="500"' in line
    ]
    assert shadow_failures and float(shadow_failures[0].split()[-1]) == 200

    # Ground truth for the first 50 requests, joined by request id.
    labels = [b["data"]["names"][max(range(10), key=lambda k: b["data"]["ndarray"][0][k])] for _, b in answers[:50]]
    for i, label in enumerate(labels):
        code, body = call(
            url,
            "/api/v1.0/feedback",
            {
                "response": {"meta": {"puid": f"r{i}"}},
                "truth": {"data": {"ndarray": [label if i % 5 else ("1" if label != "1" else "2")]}},
            },
        )
        assert code == 200 and body["meta"]["tags"]["matched"] is True
    feedback = {
        line.split("correct=")[1][1:5]: float(line.split()[-1])
        for line in call(url, "/metrics")[1].splitlines()
        if line.startswith("lathe_model_feedback_total{")
    }
    assert feedback == {"true": 40.0, "fals": 10.0}
    assert call(url, "/api/v1.0/feedback", {"truth": {}})[0] == 400

    # Sampled pairs and feedback land in the store, partitioned by deployment and hour.
    store = models["store"]

    def logged() -> list[dict[str, Any]]:
        keys = store.list(f"logs/{namespace}/digits/")
        assert keys and all(k.endswith(".parquet") and k.count("/") == 5 for k in keys)
        rows_ = [r for k in keys for r in pq.read_table(io.BytesIO(store.get(k))).to_pylist()]
        assert sum(r["kind"] == "feedback" for r in rows_) == 50
        return rows_

    records = eventually(logged, timeout=30)
    served = [r for r in records if r["kind"] == "prediction" and not r["shadow"]]
    assert len(served) == 200 and {r["request_id"] for r in served} == {f"r{i}" for i in range(200)}
    assert all(len(r["features"]) == 64 and r["version"] == 1 for r in served)

    # 90:10 lands within statistical tolerance (binomial: sd 9.5 for 1000 requests; allow 5 sd).
    apply(
        kubectl,
        namespace,
        "digits",
        canary={"version": 2},
        traffic=[{"version": 1, "percent": 90}, {"version": 2, "percent": 10}],
    )
    eventually(lambda: status(kubectl, namespace, "digits").get("serving") == "1:90,2:10", timeout=60)
    eventually(lambda: ready(kubectl, namespace, "digits") == ("True", "TrafficOverride"), timeout=60)
    split = Counter(
        call(url, "/api/v1.0/predictions", {"data": {"ndarray": [rows[i % 100].tolist()]}})[1]["meta"]["requestPath"][
            "model"
        ]
        for i in range(1000)
    )
    assert abs(split[f"{MODEL}:2"] - 100) <= 48 and split[f"{MODEL}:1"] + split[f"{MODEL}:2"] == 1000


def test_canary_promotes_on_good_metrics_and_rolls_back_on_injected_errors(
    kubectl: Kubectl, namespace: str, s3: S3Server, prometheus: Prometheus, local_operator: Any
) -> None:
    models = registry(s3, namespace)
    operator = local_operator()
    analysis = {"window": "8s", "minRequests": 20, "maxErrorRate": 0.05}
    apply(kubectl, namespace, "digits", canary={"version": 2, "steps": [50, 100], "analysis": analysis})
    eventually(lambda: ready(kubectl, namespace, "digits") == ("True", "CanaryProgressing"), timeout=90)
    endpoint = status(kubectl, namespace, "digits")["endpoint"]
    prometheus.scrape([endpoint.split("/")[2]])
    client = Traffic(endpoint, models["rows"])
    client.start()
    try:
        # Restarting the operator mid-canary neither restarts the server nor the canary.
        pid = json.loads(next(local_operator.local_dir.glob("*/digits/server.json")).read_text())["pid"]
        operator.kill(signal.SIGKILL)
        local_operator()
        eventually(lambda: status(kubectl, namespace, "digits")["canary"]["phase"] == "Promoted", timeout=120)
        assert json.loads(next(local_operator.local_dir.glob("*/digits/server.json")).read_text())["pid"] == pid
        promoted = status(kubectl, namespace, "digits")
        assert promoted["serving"] == "2:100" and ready(kubectl, namespace, "digits") == ("True", "CanaryPromoted")
        assert [h["action"] for h in promoted["history"]] == ["Deploy", "Promote"]
        assert "errors 0.00%" in promoted["history"][-1]["reason"]
        eventually(lambda: client.seen[f"{MODEL}:2"] > 20 and "500" not in client.seen, timeout=30)
        # The promotion is real: the registry's baseline for the next gate, and the stable version from now on.
        assert ModelRegistry(models["store"], namespace, MODEL).promoted() == 2
        assert promoted["stable"] == {"version": 2, "specVersion": 1}
        measured = promoted["canary"]["measured"]  # what `kubectl lathe get md` shows against the limits
        assert measured["candidate"]["requests"] >= 1 and measured["candidate"]["errorRate"] == 0.0

        # Version 3 fails inside onnxruntime: its 5xx rate rolls it back to the promoted stable version 2.
        apply(kubectl, namespace, "digits", canary={"version": 3, "steps": [50, 100], "analysis": analysis})
        eventually(lambda: status(kubectl, namespace, "digits")["canary"]["phase"] == "RolledBack", timeout=120)
    finally:
        seen = client.stop()
    rolled = status(kubectl, namespace, "digits")
    assert rolled["serving"] == "2:100" and ready(kubectl, namespace, "digits") == ("True", "CanaryRolledBack")
    assert rolled["history"][-1]["action"] == "Rollback" and "error rate" in rolled["history"][-1]["reason"]
    assert seen["500"] > 0 and seen[f"{MODEL}:2"] > 0
    events = kubectl.run("get", "events", "-n", namespace, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"CanaryStarted", "CanaryPromoted", "CanaryRolledBack"} <= reasons
    # After the rollback every request goes to stable again.
    url = base(rolled["endpoint"])
    after = Counter(
        call(url, "/api/v1.0/predictions", {"data": {"ndarray": [models["rows"][0].tolist()]}})[0] for _ in range(50)
    )
    assert after == {200: 50}

    kubectl.run("delete", "modeldeployment", "digits", "-n", namespace, "--wait=true", "--timeout=60s")
    eventually(lambda: call(url, "/health/ping")[0] == 0, timeout=30)


def test_a_server_killed_under_load_is_restarted_and_status_says_so(
    kubectl: Kubectl, namespace: str, s3: S3Server, local_operator: Any
) -> None:
    models = registry(s3, namespace)
    local_operator()
    apply(kubectl, namespace, "digits")
    eventually(lambda: ready(kubectl, namespace, "digits") == ("True", "Available"), timeout=90)
    endpoint = status(kubectl, namespace, "digits")["endpoint"]
    server_json = next(local_operator.local_dir.glob("*/digits/server.json"))
    pid = json.loads(server_json.read_text())["pid"]
    client = Traffic(endpoint, models["rows"])
    client.start()
    try:
        eventually(lambda: client.seen[f"{MODEL}:1"] > 20, timeout=30)
        os.kill(pid, signal.SIGKILL)

        def said() -> str:
            found = next(c for c in status(kubectl, namespace, "digits")["conditions"] if c["type"] == "Ready")
            assert (
                found["status"] == "True"
                and "; server restarted 1 time, last after it killed by signal 9 at " in found["message"]
            )
            return str(found["message"])

        eventually(said, timeout=60)
        answered = client.seen[f"{MODEL}:1"]

        def answering() -> bool:  # the new server answers
            assert client.seen[f"{MODEL}:1"] > answered + 20 and client.is_alive(), (client.seen, client.is_alive())
            return True

        eventually(answering, timeout=30)
    finally:
        seen = client.stop()
    restarted = json.loads(server_json.read_text())
    assert restarted["pid"] != pid and set(seen) <= {f"{MODEL}:1", "0", "cut"}  # no 5xx
    assert status(kubectl, namespace, "digits")["endpoint"] == endpoint  # the same port: clients keep working

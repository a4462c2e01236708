"""Dataset end to end: the operator ingests from the real S3 server, versions, refuses bad data and sources
outside its rules, survives restarts."""

from __future__ import annotations

import http.server
import io
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from kubernetes import client as kube_client
from kubernetes.dynamic import DynamicClient
from minio import Minio

from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store_s3 import S3Store
from lathe_operator.backends.kube import METADATA_ONLY, KubeClient
from lathe_pipelines.sample_data import digits
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl, OperatorProcess
from tests.servers.controlplane import ControlPlane
from tests.servers.s3 import S3Server

EXAMPLE = load_yaml(ROOT / "examples/01-dataset/dataset.yaml")


@pytest.fixture
def raw(s3: S3Server, namespace: str, kubectl: Kubectl) -> Iterator[Any]:
    """Upload a CSV to s3://raw-<ns>/digits/digits.csv; the store-creds Secret holds the S3 keys and opts in."""
    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    bucket = f"raw-{namespace}"
    client.make_bucket(bucket)
    creds = s3.secret("store-creds", {"lathe.dev/credentials": "true"})
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=creds)

    def upload(frame: pd.DataFrame | bytes, key: str = "digits/digits.csv") -> None:
        data = frame if isinstance(frame, bytes) else frame.to_csv(index=False).encode()
        client.put_object(bucket, key, io.BytesIO(data), len(data))

    upload.bucket = bucket  # type: ignore[attr-defined]
    yield upload


@pytest.fixture
def operator(control_plane: ControlPlane, s3: S3Server, namespace: str, tmp_path: Path) -> Iterator[Any]:
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_SOURCE_ENDPOINTS": "127.0.0.1:1",  # allowed, and nothing listens there
    }
    started: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        started.append(OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env))
        return started[-1]

    yield start
    for process in started:
        process.kill(signal.SIGTERM)


def dataset(bucket: str, **spec: Any) -> str:
    manifest = {
        **EXAMPLE,
        "spec": {
            **EXAMPLE["spec"],
            "source": {**EXAMPLE["spec"]["source"], "uri": f"s3://{bucket}/digits/digits.csv"},
            **spec,
        },
    }
    return yaml.safe_dump(manifest)


def status(kubectl: Kubectl, namespace: str, name: str = "digits") -> dict[str, Any]:
    return dict(kubectl.get("dataset", name, "-n", namespace).get("status") or {})


def ready(kubectl: Kubectl, namespace: str, name: str = "digits") -> tuple[str, str]:
    conditions = status(kubectl, namespace, name).get("conditions") or []
    found = next((c for c in conditions if c["type"] == "Ready"), {"status": "", "reason": ""})
    return found["status"], found["reason"]


def stored_versions(s3: S3Server, namespace: str, name: str = "digits") -> list[str]:
    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")
    return DatasetVersions(store, namespace, name).versions()


def test_dataset_from_s3_versions_and_refuses_bad_data(
    kubectl: Kubectl, namespace: str, raw: Any, operator: Any, s3: S3Server
) -> None:
    frame = digits()
    raw(frame)
    operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket, refresh={"interval": "4s"}))
    eventually(lambda: ready(kubectl, namespace) == ("True", "Published"), timeout=120)
    first = status(kubectl, namespace)
    assert (first["rows"], first["columns"]) == (1797, 65) and first["phase"] == "Ready"
    assert first["uri"] == f"s3://lathe-{namespace}/datasets/{namespace}/digits/{first['currentVersion'][7:]}/"
    assert first["validation"]["failed"] == 0 and first["validation"]["evaluated"] == 4
    table = kubectl.run("get", "datasets", "-n", namespace).stdout
    assert first["currentVersion"] in table and "1797" in table

    raw(frame.iloc[:1500])  # changed content: a second version on the next refresh
    eventually(
        lambda: status(kubectl, namespace).get("currentVersion") not in (None, first["currentVersion"]), timeout=120
    )
    second = status(kubectl, namespace)
    assert second["rows"] == 1500 and [h["version"] for h in second["history"]][:2] == [
        second["currentVersion"],
        first["currentVersion"],
    ]

    raw(frame.iloc[:1500])  # identical content: nothing new
    run = second["lastRun"]["name"]
    eventually(
        lambda: (
            status(kubectl, namespace)["lastRun"]["name"] != run
            and status(kubectl, namespace)["lastRun"]["outcome"] == "Unchanged"
        ),
        timeout=120,
    )
    assert len(status(kubectl, namespace)["history"]) == 2

    broken = frame.iloc[:1500].copy()
    broken.loc[3, "pixel_0_2"] = 17
    raw(broken)
    eventually(lambda: ready(kubectl, namespace) == ("False", "ValidationFailed"), timeout=120)
    failed = status(kubectl, namespace)
    assert failed["currentVersion"] == second["currentVersion"] and failed["phase"] == "Failed"
    assert "expect_column_values_to_be_between(column=pixel_0_2" in failed["validation"]["failures"][0]
    assert sorted(stored_versions(s3, namespace)) == sorted([first["currentVersion"], second["currentVersion"]])
    events = kubectl.get("events", "-n", namespace, "--field-selector", "involvedObject.name=digits")["items"]
    assert {"Published", "ValidationFailed"} <= {e["reason"] for e in events}


def test_restart_mid_ingest_publishes_one_version(
    kubectl: Kubectl, namespace: str, raw: Any, operator: Any, s3: S3Server
) -> None:
    raw(digits())
    first = operator()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket))
    eventually(lambda: (status(kubectl, namespace).get("lastRun") or {}).get("outcome") == "Running", timeout=60)
    first.kill(signal.SIGKILL)
    operator()
    eventually(lambda: ready(kubectl, namespace) == ("True", "Published"), timeout=120)
    assert len(stored_versions(s3, namespace)) == 1
    assert len(status(kubectl, namespace)["history"]) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"source": {"uri": "s3://{bucket}/digits/missing.csv", "credentialsSecret": {"name": "store-creds"}}},
            "SourceNotFound",
        ),
        (
            {"source": {"uri": "s3://{bucket}/digits/digits.csv", "credentialsSecret": {"name": "no-such-secret"}}},
            "CredentialsNotFound",
        ),
        (
            {
                "source": {
                    "uri": "s3://{bucket}/digits/digits.csv",
                    "endpoint": "127.0.0.1:1",
                    "credentialsSecret": {"name": "store-creds"},
                }
            },
            "SourceUnavailable",
        ),
        ({"schema": [{"name": "label", "type": "int"}]}, "SchemaMismatch"),
        ({"source": {"uri": "s3://{bucket}/digits/notes.csv"}}, "MalformedData"),
    ],
)
def test_bad_input_ends_not_ready_with_a_reason(
    kubectl: Kubectl, namespace: str, raw: Any, operator: Any, change: dict[str, Any], reason: str
) -> None:
    raw(digits())
    raw(b'a,b\n1,2,3,4\n"x', key="digits/notes.csv")
    operator()
    spec = yaml.safe_load(yaml.safe_dump(change).replace("{bucket}", raw.bucket))
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket, **spec))
    eventually(lambda: ready(kubectl, namespace) == ("False", reason), timeout=120)
    assert status(kubectl, namespace).get("currentVersion") is None


def listener(seen: list[dict[str, str]]) -> type[http.server.BaseHTTPRequestHandler]:
    """A server of the Dataset author's: keeps the headers of every request that reaches it, refuses each."""

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_error(403)

        do_HEAD = do_POST = do_PUT = do_GET

        def log_message(self, *_: Any) -> None:
            pass

    return Listener


def named(manifest: str, name: str) -> dict[str, Any]:
    found = yaml.safe_load(manifest)
    found["metadata"]["name"] = name
    return dict(found)


def test_sources_need_an_opted_in_secret_an_allowed_endpoint_and_own_keys_for_the_store(
    kubectl: Kubectl, namespace: str, raw: Any, operator: Any, s3: S3Server, api: kube_client.ApiClient
) -> None:
    raw(digits().iloc[:1200])  # the example expects at least 1,000 rows
    keys = (f"--from-literal=accessKey={s3.access_key}", f"--from-literal=secretKey={s3.secret_key}")
    kubectl.run("create", "secret", "generic", "plain-creds", "-n", namespace, *keys)  # not labelled
    store = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    bucket = f"lathe-{namespace}"
    if not store.bucket_exists(bucket):
        store.make_bucket(bucket)
    stolen = digits().iloc[:1200].to_csv(index=False).encode()  # another namespace's data in Lathe's own bucket
    store.put_object(bucket, "datasets/team-b/digits/leak.csv", io.BytesIO(stolen), len(stolen))
    seen: list[dict[str, str]] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), listener(seen))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        operator()
        source = f"s3://{raw.bucket}/digits/digits.csv"
        unlabelled = named(
            dataset(raw.bucket, source={"uri": source, "credentialsSecret": {"name": "plain-creds"}}), "digits"
        )
        elsewhere = {
            "uri": source,
            "credentialsSecret": {"name": "store-creds"},
            "endpoint": f"127.0.0.1:{server.server_address[1]}",
        }
        foreign = named(dataset(raw.bucket, source=elsewhere), "elsewhere")
        inside = named(dataset(raw.bucket, source={"uri": f"s3://{bucket}/datasets/team-b/digits/leak.csv"}), "inside")
        kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all([unlabelled, foreign, inside]))
        expected = {
            "digits": "CredentialsNotAllowed",
            "elsewhere": "EndpointNotAllowed",
            "inside": "CredentialsRequired",
        }
        for name, reason in expected.items():
            eventually(
                lambda name=name, reason=reason: ready(kubectl, namespace, name) == ("False", reason), timeout=60
            )
        message = next(c["message"] for c in status(kubectl, namespace)["conditions"] if c["type"] == "Ready")
        assert f"kubectl label secret plain-creds -n {namespace} lathe.dev/credentials=true" in message
        assert "LATHE_SOURCE_ENDPOINTS" in status(kubectl, namespace, "elsewhere")["conditions"][0]["message"]
        assert "credentialsSecret" in status(kubectl, namespace, "inside")["conditions"][0]["message"]
        assert seen == []  # no request, so no access key or signature, reached the other endpoint
        for name in expected:  # nothing ran: no version and no run report in the store
            versions = DatasetVersions(S3Store(s3.endpoint, s3.access_key, s3.secret_key, bucket), namespace, name)
            assert (
                versions.versions() == []
                and versions.report(status(kubectl, namespace, name)["lastRun"]["name"]) is None
            )

        # The operator saw the Secret's labels, never its data.
        assert KubeClient(api).metadata("v1", "Secret", namespace, "plain-creds")["name"] == "plain-creds"
        raw_answer = (
            DynamicClient(api)
            .resources.get(api_version="v1", kind="Secret")
            .get(name="plain-creds", namespace=namespace, header_params={"Accept": METADATA_ONLY})
        )
        assert raw_answer.to_dict()["kind"] == "PartialObjectMetadata" and "data" not in raw_answer.to_dict()

        kubectl.run("label", "secret", "plain-creds", "-n", namespace, "lathe.dev/credentials=true")
        eventually(lambda: ready(kubectl, namespace) == ("True", "Published"), timeout=120)
        assert status(kubectl, namespace)["rows"] == 1200 and len(stored_versions(s3, namespace)) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_http_and_configmap_sources(kubectl: Kubectl, namespace: str, operator: Any, tmp_path: Path) -> None:
    import functools

    digits().iloc[:300].to_csv(tmp_path / "digits.csv", index=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        operator()
        url = f"http://127.0.0.1:{server.server_address[1]}/digits.csv"
        web = {
            "apiVersion": "lathe.dev/v1alpha1",
            "kind": "Dataset",
            "metadata": {"name": "digits"},
            "spec": {"source": {"uri": url}, "target": "label"},
        }
        small = "a,label\n1,0\n2,1\n3,0\n"
        kubectl.run("create", "configmap", "tiny", "-n", namespace, f"--from-literal=data.csv={small}")
        inline = {
            "apiVersion": "lathe.dev/v1alpha1",
            "kind": "Dataset",
            "metadata": {"name": "tiny"},
            "spec": {"source": {"configMap": {"name": "tiny", "key": "data.csv"}}, "target": "label"},
        }
        kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all([web, inline]))
        eventually(lambda: ready(kubectl, namespace) == ("True", "Published"), timeout=120)
        assert status(kubectl, namespace)["rows"] == 300
        eventually(
            lambda: (kubectl.get("dataset", "tiny", "-n", namespace).get("status") or {}).get("rows") == 3, timeout=120
        )
    finally:
        server.shutdown()
        server.server_close()


def test_delete_on_removal_removes_stored_versions(
    kubectl: Kubectl, namespace: str, raw: Any, operator: Any, s3: S3Server
) -> None:
    raw(digits().iloc[:1200])  # the example expects at least 1,000 rows
    operator()
    kubectl.run(
        "apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket, retention={"keep": 3, "deleteOnRemoval": True})
    )
    eventually(lambda: ready(kubectl, namespace) == ("True", "Published"), timeout=120)
    assert "lathe.dev/finalizer" in kubectl.get("dataset", "digits", "-n", namespace)["metadata"]["finalizers"]
    assert len(stored_versions(s3, namespace)) == 1
    kubectl.run("delete", "dataset", "digits", "-n", namespace, "--timeout=60s")
    assert stored_versions(s3, namespace) == []


def test_retention_keeps_the_version_a_registered_model_was_trained_on(
    kubectl: Kubectl, namespace: str, raw: Any, operator: Any, s3: S3Server
) -> None:
    frame = digits()
    raw(frame.iloc[:1200])
    operator()
    spec = {"refresh": {"interval": "4s"}, "retention": {"keep": 1}}
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket, **spec))
    eventually(lambda: ready(kubectl, namespace) == ("True", "Published"), timeout=120)
    first = status(kubectl, namespace)["currentVersion"]
    store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}")
    card = {"run": {"id": "digits-mlp-1"}, "dataset": {"name": "digits", "version": first}}
    ModelRegistry(store, namespace, "digits-mlp").register(b"onnx", card)  # its TrainingRun is gone
    for rows in (1300, 1400):  # two newer versions: the middle one is the only one retention may delete
        raw(frame.iloc[:rows])
        eventually(lambda rows=rows: status(kubectl, namespace).get("rows") == rows, timeout=120)
    third = status(kubectl, namespace)["currentVersion"]
    eventually(lambda: sorted(stored_versions(s3, namespace)) == sorted([first, third]), timeout=60)
    events = kubectl.get("events", "-n", namespace, "--field-selector", "involvedObject.name=digits")["items"]
    assert "DeletedVersion" in {e["reason"] for e in events}


def test_unreachable_store_is_reported(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, raw: Any, tmp_path: Path
) -> None:
    raw(digits().iloc[:200])
    env = {"LATHE_EXECUTOR": "local", "LATHE_STORE_URI": "s3://lathe", "LATHE_STORE_ENDPOINT": "127.0.0.1:1"}
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
    try:
        kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket))
        eventually(lambda: ready(kubectl, namespace) == ("False", "StoreUnavailable"), timeout=60)
        assert status(kubectl, namespace)["phase"] == "Failed"
    finally:
        process.kill(signal.SIGTERM)

"""The local demo: real servers on loopback, the operator, the examples applied, their status shown.

Run with `make demo`. It grows with each slice toward the full loop (ingest, validate,
train, serve, replay shifted traffic, detect drift, retrain, promote). Today: the digits
data is uploaded to a real S3 server, the Dataset is ingested, validated with Great
Expectations, versioned and profiled; the TrainingRun runs the Kubeflow pipeline with
kfp.local (PyTorch, ONNX export and parity, gates) and registers the model with its
lineage; a broken upload is refused and the good version stays current; the model is
served online by a supervised local model server (Seldon protocol), scored in batch and
bundled for the edge; a second model is trained and rolled out as a canary that a real
Prometheus measures and the operator promotes; then darker digits arrive (half the ink)
and a DriftMonitor finds the drift in the request logs, with live accuracy from feedback
and an HTML report in the store; it retrains on the labelled darker traffic merged with
the training data, and the new version goes through a canary to 100%.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from minio import Minio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hack.demo_traffic import Client, post  # noqa: E402
from lathe_core.datasets import DatasetVersions  # noqa: E402
from lathe_core.registry import ModelRegistry  # noqa: E402
from lathe_core.store_s3 import S3Store  # noqa: E402
from lathe_pipelines.sample_data import digits  # noqa: E402
from tests.servers.controlplane import ControlPlane  # noqa: E402
from tests.servers.process import free_port  # noqa: E402
from tests.servers.prometheus import Prometheus  # noqa: E402
from tests.servers.s3 import S3Server  # noqa: E402

FIRST = [f"examples/{d}" for d in ("01-dataset", "02-training-run", "03-model-deployment", "04-drift-monitor")]


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(plane.kubectl), f"--kubeconfig={plane.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


def show(plane: ControlPlane, *args: str) -> None:
    print(f"\n$ kubectl {' '.join(args)}")
    print(kubectl(plane, *args).rstrip())


def wait_for(plane: ControlPlane, reason: str, kind: str = "dataset/digits", timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    query = '{.status.conditions[?(@.type=="Ready")].reason}'
    while (found := kubectl(plane, "get", kind, "-n", "demo", "-o", f"jsonpath={query}")) != reason:
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind} did not reach {reason} within {timeout}s (now {found!r})")
        time.sleep(1)


def upload(client: Minio, frame_csv: bytes) -> None:
    client.put_object("raw", "digits/digits.csv", io.BytesIO(frame_csv), len(frame_csv))


def jsonpath(plane: ControlPlane, kind: str, query: str) -> str:
    return kubectl(plane, "get", kind, "-n", "demo", "-o", f"jsonpath={query}")


def operator_env(plane: ControlPlane, s3: S3Server, prometheus: Prometheus, metrics_port: int) -> dict[str, str]:
    """The local operator's settings: local executor and kfp.local, the demo's store and Prometheus."""
    return {
        **os.environ,
        "KUBECONFIG": str(plane.kubeconfig),
        "LATHE_METRICS_PORT": str(metrics_port),
        "LATHE_EXECUTOR": "local",
        "LATHE_PIPELINE_BACKEND": "local",
        "LATHE_STORE_URI": "s3://lathe",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_PROMETHEUS_URL": prometheus.url,
        "LATHE_LOCAL_DIR": str(Path(plane.work) / "serving"),
    }


def ingest(plane: ControlPlane, s3: S3Server) -> DatasetVersions:
    """CRDs, the namespace and its store Secret, the first examples; the published version."""
    kubectl(plane, "apply", "--server-side", "-f", str(ROOT / "charts/lathe/crds"))
    kubectl(plane, "wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=lathe")
    kubectl(plane, "create", "namespace", "demo")
    # opted in: Lathe reads a Dataset source's keys only from Secrets with this label
    creds = s3.secret("store-creds", {"lathe.dev/credentials": "true"})
    kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=creds)
    show(plane, "apply", "-n", "demo", *[a for d in FIRST for a in ("-f", str(ROOT / d))])
    print("\nAn invalid spec is refused by the API server:")
    bad = (ROOT / "examples/02-training-run/trainingrun.yaml").read_text().replace("min: 0.9}", "min: 0.9, max: 0.5}")
    print(kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=bad.replace("digits-mlp-1", "bad-run")).rstrip())
    wait_for(plane, "Published")
    show(plane, "get", "lathe", "-n", "demo")
    version = kubectl(plane, "get", "dataset", "digits", "-n", "demo", "-o", "jsonpath={.status.currentVersion}")
    versions = DatasetVersions(S3Store(s3.endpoint, s3.access_key, s3.secret_key, "lathe"), "demo", "digits")
    manifest = versions.manifest(version)
    print(f"\nStored in s3://lathe/{versions.key(version, '')}: {', '.join(manifest['files'])} + manifest.json")
    print(json.dumps({k: manifest[k] for k in ("version", "rows", "columns", "validation")}, indent=1))
    return versions


def trained(plane: ControlPlane, versions: DatasetVersions) -> ModelRegistry:
    print("\nThe TrainingRun pinned that version and runs the kfp pipeline locally (kfp.local):")
    wait_for(plane, "Registered", "trainingrun/digits-mlp-1")
    show(plane, "get", "trainingruns", "-n", "demo")
    registry = ModelRegistry(versions.store, "demo", "digits-classifier")
    card = registry.card(1)
    print(f"\nRegistered s3://lathe/{registry.key(1, 'model.onnx')} (sha256 {card['sha256'][:12]}...), model card:")
    shown = {
        "metrics": {k: round(v, 4) for k, v in card["metrics"].items() if not k.startswith("recall")},
        "gates": card["gates"],
        "dataset": card["dataset"],
        "seed": card["seed"],
        "device": card["training"]["device"],
        "parity": card["parity"],
        "pipelineSha256": card["pipeline"]["specSha256"][:12],
    }
    print(json.dumps(shown, indent=1))
    return registry


def refused(plane: ControlPlane, client: Minio, frame: Any) -> None:
    """A broken file fails validation; the current version stays."""
    broken = frame.copy()
    broken.loc[7, "pixel_0_2"] = 99
    upload(client, broken.to_csv(index=False).encode())
    print("\nUploaded a broken file (pixel_0_2 = 99) and changed the spec to re-read it:")
    kubectl(
        plane, "patch", "dataset", "digits", "-n", "demo", "--type=merge", "-p", '{"spec":{"retention":{"keep":5}}}'
    )
    wait_for(plane, "ValidationFailed")
    show(plane, "get", "dataset", "digits", "-n", "demo", "-o", "wide")
    query = "{.status.validation.failures[0]}{'\\n'}current version: {.status.currentVersion}"
    print(kubectl(plane, "get", "dataset", "digits", "-n", "demo", "-o", f"jsonpath={query}"))


def main() -> int:
    started = time.monotonic()
    plane, s3 = ControlPlane().start(), S3Server().start()
    prometheus = Prometheus(file_sd=[str(Path(plane.work) / "serving" / "prometheus-targets.json")]).start()
    print(
        f"Started kube-apiserver {plane.server}, S3 http://{s3.endpoint} and Prometheus {prometheus.url} "
        f"in {time.monotonic() - started:.1f}s"
    )
    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    client.make_bucket("raw")
    frame = digits()
    upload(client, frame.to_csv(index=False).encode())
    print(f"Uploaded s3://raw/digits/digits.csv ({len(frame)} rows, scikit-learn's digits)")
    metrics_port = free_port()
    prometheus.scrape([f"127.0.0.1:{metrics_port}"])  # the operator's own metrics: drift gauges
    log = open(Path(plane.work) / "operator.log", "wb")  # noqa: SIM115
    operator = subprocess.Popen(
        [sys.executable, "-m", "lathe_operator", "operator", "-n", "demo", "--liveness", ""],
        env=operator_env(plane, s3, prometheus, metrics_port),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        registry = trained(plane, ingest(plane, s3))
        refused(plane, client, frame)
        serve(plane, frame)
        canary(plane, frame)
        client = drift(plane, frame, registry, prometheus)
        closed_loop(plane, client, registry)
        show(plane, "get", "events", "-n", "demo", "--sort-by=.lastTimestamp")
    finally:
        kubectl(plane, "delete", "modeldeployments", "--all", "-n", "demo", "--wait=true", "--timeout=30s")
        operator.terminate()
        operator.wait(30)
        log.close()
        prometheus.stop()
        s3.stop()
        plane.stop()
    return 0


def serve(plane: ControlPlane, frame: Any) -> None:
    print("\nThe ModelDeployment serves version 1 (a local model server speaking Seldon's protocol):")
    wait_for(plane, "Available", "modeldeployment/digits", timeout=120)
    endpoint = jsonpath(plane, "modeldeployment/digits", "{.status.endpoint}")
    rows, labels = frame.drop(columns="label").to_numpy(dtype="float32"), frame["label"].astype(str).tolist()
    code, answer = post(endpoint, {"data": {"ndarray": rows[:2].tolist()}})
    print(f"POST {endpoint} with 2 rows -> {code}:")
    print(
        json.dumps(
            {
                "data": {
                    "names": answer["data"]["names"],
                    "ndarray": [[round(p, 3) for p in r] for r in answer["data"]["ndarray"]],
                },
                "meta": answer["meta"],
            }
        )
    )
    code, refused = post(endpoint, {"data": {"ndarray": [[1, 2, 3]]}})
    print(f"A row with 3 features -> {code}: {refused['status']['reason']}: {refused['status']['info']}")
    client = Client(endpoint, rows[-400:], labels[-400:], pause=0)
    for i in range(400):
        client.once(i)
    print(f"400 rows with their truth sent back as feedback: {client.stop()}")
    wait_for(plane, "Scored", "modeldeployment/digits-batch", timeout=120)
    wait_for(plane, "Bundled", "modeldeployment/digits-edge", timeout=120)
    show(plane, "get", "modeldeployments", "-n", "demo", "-o", "wide")
    for name in ("digits-batch", "digits-edge"):
        print(
            f"{name}: " + jsonpath(plane, f"modeldeployment/{name}", '{.status.conditions[?(@.type=="Ready")].message}')
        )


def canary(plane: ControlPlane, frame: Any) -> None:
    print("\nA second TrainingRun, then version 2 as a canary measured by Prometheus (examples/05-canary):")
    kubectl(plane, "apply", "-n", "demo", "-f", str(ROOT / "examples/05-canary/trainingrun.yaml"))
    wait_for(plane, "Registered", "trainingrun/digits-mlp-2")
    show(plane, "apply", "-n", "demo", "-f", str(ROOT / "examples/05-canary/modeldeployment.yaml"))
    endpoint = jsonpath(plane, "modeldeployment/digits", "{.status.endpoint}")
    rows, labels = frame.drop(columns="label").to_numpy(dtype="float32"), frame["label"].astype(str).tolist()
    client = Client(endpoint, rows, labels)
    client.start()
    try:
        wait_for(plane, "CanaryPromoted", "modeldeployment/digits", timeout=180)
    finally:
        print(f"Live traffic during the rollout: {client.stop()}")
    show(plane, "get", "modeldeployment", "digits", "-n", "demo", "-o", "wide")
    history = json.loads(jsonpath(plane, "modeldeployment/digits", "{.status.history}"))
    for entry in history:
        print(
            f"  {entry['time']}  {entry['action']:<8} version {entry['version']} -> {entry['percent']}%  "
            f"{entry.get('reason', '')}"
        )


DRIFT_MONITOR = {
    "apiVersion": "lathe.dev/v1alpha1",
    "kind": "DriftMonitor",
    "metadata": {"name": "digits-live"},
    "spec": {
        "deployment": "digits",
        "interval": "15s",
        "window": {"duration": "45s", "minSamples": 300},
        "accuracy": {"min": 0.9, "minLabelled": 50},
        "action": "retrain",
        "retrain": {"cooldown": "30m", "data": {"window": "10m", "minLabelled": 200}},
    },
}


def drift(plane: ControlPlane, frame: Any, registry: ModelRegistry, prometheus: Prometheus) -> Client:
    """Darker traffic until the monitor finds drift; the client keeps sending (the retrain learns from it)."""
    print("\nThe camera gets darker: digits with half the ink, every request logged, truth sent back as feedback;")
    print("a DriftMonitor checks the last 45 s of request logs every 15 s against the training data's profile:")
    kubectl(
        plane,
        "patch",
        "modeldeployment",
        "digits",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        '{"spec":{"logging":{"sampleRate":1.0}}}',
    )
    print(kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=yaml.safe_dump(DRIFT_MONITOR)).rstrip())
    endpoint = jsonpath(plane, "modeldeployment/digits", "{.status.endpoint}")
    rows, labels = frame.drop(columns="label").to_numpy(dtype="float32"), frame["label"].astype(str).tolist()
    client = Client(endpoint, (rows * 0.5).round(), labels, pause=0.005)
    client.start()
    try:
        wait_for(plane, "DriftDetected", "driftmonitor/digits-live", timeout=240)
    except BaseException:
        client.stop()
        raise
    print(f"Darker traffic so far: {client.summary()}")
    show(plane, "get", "driftmonitor", "digits-live", "-n", "demo")
    status = json.loads(jsonpath(plane, "driftmonitor/digits-live", "{.status}"))
    top = ", ".join(f"{f['name']} {f['score']:.2f}" for f in status["features"][:5])
    print(f"Drifted columns, largest normalised Wasserstein first: {top} ...")
    served = max(json.loads(jsonpath(plane, "modeldeployment/digits", "{.status.traffic}")), key=lambda t: t["percent"])
    before = registry.card(int(served["version"]))["metrics"]["accuracy"]
    accuracy = status.get("liveAccuracy")
    after = "n/a" if accuracy is None else f"{accuracy:.3f}"
    print(
        f"Accuracy of version {served['version']}: {before:.3f} on its test split before, {after} live on "
        f"{status.get('labelledSamples')} labelled darker requests now."
    )
    print(f"The check's report: {status.get('reportUri')}")
    deadline = time.monotonic() + 60
    while not (found := prometheus.query('lathe_drift_detected{monitor="digits-live"} == 1')):
        if time.monotonic() > deadline:
            raise SystemExit("Prometheus did not scrape lathe_drift_detected from the operator within 60s")
        time.sleep(1)
    print(
        f'Prometheus scraped lathe_drift_detected{{monitor="digits-live"}} = {found[0]["value"][1]} from the '
        "operator: the chart's LatheDataDrift alert fires on it."
    )
    return client


def retrain_phase(plane: ControlPlane) -> str:
    return jsonpath(plane, "driftmonitor/digits-live", "{.status.retrains[-1:].phase}")


def closed_loop(plane: ControlPlane, client: Client, registry: ModelRegistry) -> None:
    """The monitor's retrain: harvest, a Dataset version, a TrainingRun, a canary, the promotion."""
    print("\nThe monitor retrains (action: retrain): labelled darker traffic + the training data -> a Dataset")
    print("version -> a TrainingRun -> a canary of the new version, while the darker traffic goes on:")
    try:
        deadline, seen = time.monotonic() + 600, ""
        while (phase := retrain_phase(plane)) not in ("Promoted", "RolledBack", "Failed"):
            if phase != seen:
                print(f"  retrain: {phase or 'waiting'}")
                seen = phase
            if time.monotonic() > deadline:
                raise SystemExit(f"the retrain did not end within 600s (now {phase!r})")
            time.sleep(1)
        print(f"  retrain: {phase}")
        time.sleep(20)  # the promoted version alone on the darker traffic for a while
    finally:
        by_version = client.stop()
    record = json.loads(jsonpath(plane, "driftmonitor/digits-live", "{.status.retrains[-1]}"))
    print(json.dumps(record, indent=1))
    if phase != "Promoted":
        raise SystemExit(f"the retrain ended {phase}: {record.get('message')}")
    show(plane, "get", "datasets,trainingruns", "-n", "demo")
    history = json.loads(jsonpath(plane, "modeldeployment/digits", "{.status.history}"))
    for entry in history[-3:]:
        print(f"  {entry['time']}  {entry['action']:<8} version {entry['version']} -> {entry['percent']}%")
    new = int(record["modelVersion"])
    card = registry.card(new)
    print(
        f"\nVersion {new} trained on {card['dataset']['name']} {card['dataset']['version'][:19]}... "
        f"(test accuracy {card['metrics']['accuracy']:.3f}); the registry's promoted version is {registry.promoted()}."
    )
    print(f"Live accuracy on darker digits, by the version that answered: {by_version}")
    show(plane, "get", "driftmonitor", "digits-live", "-n", "demo", "-o", "wide")


if __name__ == "__main__":
    sys.exit(main())

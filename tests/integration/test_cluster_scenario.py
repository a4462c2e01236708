"""The scenario in a real cluster: `helm install` with run Jobs, the KFP backend and serving from pods.

The operator runs as a pod under the chart's RBAC (a Role in the watched namespace, whose
Secrets it may only get, and reads as metadata), in namespaces that enforce the restricted Pod
Security Standard. A Dataset's ingest Job pod reads the source from the S3 server and publishes
a version; a TrainingRun goes to the KFP API (the fake, at the node's address), whose controller
the test plays by executing the submitted run; a second TrainingRun trains in a Job pod of the
pipelines image (the job backend); a batch and an edge ModelDeployment run as Job pods; an
online one serves the first model from a pod, and the second run's model is promoted as a canary
from what a real Prometheus scraped from the model server pods (found through the API, as the
chart's PodMonitor selects them). A Dataset whose credentials Secret is missing or not labelled
lathe.dev/credentials=true ends in a condition before any Job starts; one whose Secret lacks a
key ends with the pod's reason; the operator's ServiceAccount can get Secrets in the watched
namespace only.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from minio import Minio

from lathe_pipelines import training
from lathe_pipelines.sample_data import digits
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl
from tests.integration.test_chart_install import install, release  # noqa: F401  (fixture)
from tests.integration.test_dataset import dataset
from tests.integration.test_model_deployment_local import Traffic, ready
from tests.integration.test_model_server import call
from tests.integration.test_serving_kubernetes import reachable_s3, store_secret  # noqa: F401  (fixture)
from tests.servers.controlplane import ControlPlane
from tests.servers.kfp_fake import FakeKfp
from tests.servers.node import Node, images, node_address
from tests.servers.prometheus import Prometheus
from tests.servers.s3 import S3Server

RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun.yaml")


@pytest.fixture
def scraper(control_plane: ControlPlane) -> Iterator[Prometheus]:
    """A real Prometheus that finds the model server pods through the API, as the chart's PodMonitor would."""
    server = Prometheus(host=node_address(), pods=control_plane.kubeconfig).start()
    yield server
    server.stop()


@pytest.fixture
def kfp() -> Iterator[FakeKfp]:
    fake = FakeKfp(host=node_address()).start()
    yield fake
    fake.stop()


# What a hostile trainer tries before it trains: the store's keys in any process's environment it can read, the
# API token, and the held-out split anywhere it can look. It prints what it found, then runs the example trainer.
PROBE = """
import glob, json, os, sys
found = {"keys": [k for k in os.environ if k.startswith("LATHE_STORE")], "token": False, "splits": [], "pids": 0}
for path in glob.glob("/proc/[0-9]*/environ"):
    found["pids"] += 1
    try:
        if b"LATHE_STORE_SECRET_KEY" in open(path, "rb").read():
            found["keys"].append(path)
    except OSError:
        pass
found["token"] = os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token")
for top in ("/tmp", "/lathe", "/var/run", "/home", "/proc/1/root/tmp"):
    for folder, _, files in os.walk(top):
        found["splits"] += [os.path.join(folder, f) for f in files if f.endswith(".npz") or "x_test" in f]
print("PROBE " + json.dumps(found), flush=True)
source, sys.argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]
exec(compile(source, "train.py", "exec"), {"__name__": "__main__"})
"""


def own_trainer(image: str) -> dict[str, Any]:
    """The example's own-trainer run with the pipelines image standing in for the team's, and ``PROBE`` first."""
    run = load_yaml(ROOT / "examples/02-training-run/trainingrun-trainer.yaml")
    script = (ROOT / "examples/02-training-run/trainer/train.py").read_text()
    run["spec"]["trainer"] = {"image": image, "command": ["python", "-c", PROBE], "args": [script, "--epochs", "300"]}
    run["spec"]["pipeline"] = {"backend": "job"}
    return run


def condition(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = kubectl.get(kind, name, "-n", namespace).get("status") or {}
    return next((c for c in found.get("conditions") or [] if c["type"] == "Ready"), {})


def play_kfp(kfp: FakeKfp, s3: S3Server, namespace: str) -> dict[str, Any]:
    """The KFP controller's part: execute the newly submitted run for real, then mark it succeeded."""
    [run] = eventually(lambda: [r for r in kfp.runs.values() if r["state"] == "PENDING"], timeout=180)
    kfp.set_state(run["run_id"], "RUNNING")
    store = {
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
    }
    saved = {k: os.environ.get(k) for k in store}
    os.environ.update(store)
    try:
        parameters = run["runtime_config"]["parameters"]
        result = training.run_local(parameters, tempfile.mkdtemp(prefix="kfp-play-"), resources={})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    kfp.set_state(run["run_id"], "SUCCEEDED")
    return result


@pytest.mark.timeout(1500)  # loading the pipelines image (torch with CUDA, 3.4 GB) into the node alone takes minutes
def test_the_scenario_runs_in_pods_under_the_charts_rbac(
    kubectl: Kubectl,
    control_plane: ControlPlane,
    namespace: str,
    node: Node,
    reachable_s3: S3Server,  # noqa: F811
    kfp: FakeKfp,
    scraper: Prometheus,
    release: dict[str, str],
) -> None:
    system = release["namespace"]
    for name in (system, namespace):
        store_secret(kubectl, name, reachable_s3)
    raw = Minio(reachable_s3.endpoint, reachable_s3.access_key, reachable_s3.secret_key, secure=False)
    raw.make_bucket(f"raw-{namespace}")
    data = digits().to_csv(index=False).encode()
    raw.put_object(f"raw-{namespace}", "digits/digits.csv", io.BytesIO(data), len(data))
    kubectl.run(
        "create", "secret", "generic", "store-creds", "-n", namespace,
        f"--from-literal=accessKey={reachable_s3.access_key}", f"--from-literal=secretKey={reachable_s3.secret_key}",
    )  # fmt: skip
    kubectl.run("label", "secret", "store-creds", "-n", namespace, "lathe.dev/credentials=true")  # opts in
    started = time.monotonic()
    jobs = node.load(images("build-images.sh", "jobs")["jobs"])
    pipelines = node.load(images("build-images.sh", "pipelines")["pipelines"])
    print(f"jobs and pipelines images built or found, and loaded, in {time.monotonic() - started:.0f}s")
    install(
        kubectl,
        control_plane,
        release,
        namespace,
        reachable_s3,
        {
            "executor": "job",
            "jobsImage": jobs,
            "pipelines.backend": "kfp",
            "pipelines.kfpHost": kfp.url,
            "pipelinesImage": pipelines,
            "serving.prometheusUrl": scraper.url,
        },
    )

    # Ingest in a Job pod: the source from S3, validated, versioned, published.
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(f"raw-{namespace}"))
    eventually(lambda: condition(kubectl, "dataset", "digits", namespace).get("reason") == "Published", timeout=300)
    eventually(  # the report is in the store; the pod exits just after writing it
        lambda: [j["status"].get("succeeded") for j in kubectl.get("jobs", "-n", namespace)["items"]] == [1],
        timeout=60,
    )

    print(f"{time.monotonic() - started:.0f}s: ingest done")
    # A TrainingRun through the KFP API, its run executed by the test as the KFP controller would.
    run = copy.deepcopy(RUN)
    run["spec"]["model"]["hyperparameters"] = {"hidden": [32], "epochs": 8}
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(run))
    result = play_kfp(kfp, reachable_s3, namespace)
    assert result["passed"] and result["version"] == 1
    eventually(
        lambda: condition(kubectl, "trainingrun", "digits-mlp-1", namespace).get("status") == "True", timeout=120
    )

    print(f"{time.monotonic() - started:.0f}s: kfp training done")
    # Batch scoring and an edge bundle in Job pods; the trained model online from a pod.
    for example in ("batch.yaml", "edge.yaml"):
        kubectl.run("apply", "-n", namespace, "-f", str(ROOT / "examples/03-model-deployment" / example))
    online = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "digits"},
        "spec": {"model": {"name": "digits-classifier", "version": 1}, "replicas": 1, "logging": {"sampleRate": 1.0}},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(online))
    for name in ("digits-batch", "digits-edge", "digits"):
        eventually(lambda name=name: ready(kubectl, namespace, name)[0] == "True", timeout=300)

    def components() -> dict[str, int]:
        found = kubectl.get("jobs", "-n", namespace)["items"]
        return {j["metadata"]["labels"]["app.kubernetes.io/component"]: j["status"].get("succeeded") for j in found}

    eventually(lambda: components() == {"ingest": 1, "batch": 1, "edge": 1}, timeout=60)
    cluster_ip = kubectl.get("service", "digits", "-n", namespace)["spec"]["clusterIP"]
    rows = digits().drop(columns=["label"]).head(3).to_numpy().tolist()
    code, answer = call(f"http://{cluster_ip}:9000", "/api/v1.0/predictions", {"data": {"ndarray": rows}})
    assert code == 200 and answer["meta"]["requestPath"]["model"] == "digits-classifier:1", answer

    print(f"{time.monotonic() - started:.0f}s: batch, edge, online done")
    # A second run trained in a Job pod of the pipelines image (the job backend: no Kubeflow),
    # then its model as a canary, promoted on what Prometheus scraped from the model server pods.
    run["metadata"]["name"], run["spec"]["model"]["seed"] = "digits-mlp-2", 7
    run["spec"]["gates"] = [{"metric": "accuracy", "min": 0.8}]  # another seed, not a better model
    run["spec"]["pipeline"], run["spec"]["resources"] = {"backend": "job"}, {}  # no GPU on this node
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(run))
    eventually(
        lambda: condition(kubectl, "trainingrun", "digits-mlp-2", namespace).get("status") == "True", timeout=420
    )
    trained = kubectl.get("trainingrun", "digits-mlp-2", "-n", namespace)["status"]
    assert trained["model"]["version"] == 2, trained
    print(f"{time.monotonic() - started:.0f}s: training in a Job pod done")
    for kind, name, said in (("tr", "digits-mlp-2", "lathe-training"), ("ds", "digits", "Published")):
        logs = subprocess.run(  # `kubectl lathe logs`: the Job's pod
            [sys.executable, "-m", "lathe_operator.plugin.main", "logs", kind, name, "-n", namespace]
            + ["--kubeconfig", str(control_plane.kubeconfig)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert logs.returncode == 0 and "==> pod/" in logs.stdout and said in logs.stdout, (
            logs.stdout[-2000:] + logs.stderr
        )
    # The team's own trainer with the job backend: a container of its own in its image, which finds no store
    # keys, no API token and no test split (before: /proc/1/environ held the keys, the split lay beside it).
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(own_trainer(pipelines)))
    eventually(
        lambda: condition(kubectl, "trainingrun", "digits-own-1", namespace).get("status") == "True", timeout=420
    )
    [pod] = [
        p["metadata"]["name"]
        for p in kubectl.get("pods", "-n", namespace)["items"]
        if p["metadata"]["name"].startswith("digits-own-1-")
    ]
    log = kubectl.run("logs", pod, "-c", "trainer", "-n", namespace).stdout
    probe = json.loads(next(line for line in log.splitlines() if line.startswith("PROBE "))[6:])
    assert probe["keys"] == [] and probe["token"] is False and probe["splits"] == [] and probe["pids"] >= 1, probe
    own = kubectl.get("trainingrun", "digits-own-1", "-n", namespace)["status"]
    assert own["model"]["version"] == 1 and own["metrics"]["accuracy"] > 0.9, own
    print(f"{time.monotonic() - started:.0f}s: the team's trainer in its own container done")
    online["spec"]["canary"] = {
        "version": 2,
        "steps": [50, 100],
        "analysis": {"window": "30s", "minRequests": 40, "maxErrorRate": 0.05, "maxP99Ms": 1000},
    }
    traffic = Traffic(f"http://{cluster_ip}:9000", digits().drop(columns=["label"]).to_numpy(dtype="float32"))
    traffic.start()
    try:
        kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(online))
        eventually(lambda: ready(kubectl, namespace, "digits") == ("True", "CanaryPromoted"), timeout=420)
    finally:
        seen = traffic.stop()
    steps = [
        h for h in kubectl.get("modeldeployment", "digits", "-n", namespace)["status"]["history"] if h["version"] == 2
    ]
    assert [h["action"] for h in steps] == ["Deploy", "Promote"], steps
    assert "requests" in steps[-1]["reason"], steps  # the figures came from Prometheus
    # every pod's series (the promotion rolled the pods), at its highest
    series = f'lathe_model_requests_total{{namespace="{namespace}",version="2"}}'
    scraped = scraper.query(f"sum(max_over_time({series}[10m]))")
    assert scraped and float(scraped[0]["value"][1]) >= 40, scraped
    assert seen["digits-classifier:2"] > 0 and not [k for k in seen if not k.startswith("digits-classifier")], seen

    print(f"{time.monotonic() - started:.0f}s: canary done")
    # A drift check in a Job pod, over the requests the model server pods logged to the store.
    monitor = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "digits"},
        "spec": {"deployment": "digits", "interval": "10s", "window": {"duration": "1h", "minSamples": 100}},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(monitor))
    checked = eventually(
        lambda: (
            (found := kubectl.get("driftmonitor", "digits", "-n", namespace).get("status") or {}).get("verdict")
            and found
        ),
        timeout=240,
    )
    assert checked["verdict"] == "NoDrift" and checked["samples"] >= 100, checked  # the training data's own digits
    assert components().keys() == {"ingest", "batch", "edge", "train", "drift"}, components()

    print(f"{time.monotonic() - started:.0f}s: drift check done")
    # Bad input: a Secret that is not there, or does not opt in, starts nothing (the operator got its
    # metadata under the chart's RBAC); a labelled one without a key ends the run with the pod's reason.
    kubectl.run("create", "secret", "generic", "plain-creds", "-n", namespace, "--from-literal=accessKey=a")
    kubectl.run("create", "secret", "generic", "no-keys", "-n", namespace, "--from-literal=accessKey=a")
    kubectl.run("label", "secret", "no-keys", "-n", namespace, "lathe.dev/credentials=true")
    cases = {"missing": "not-there", "unlabelled": "plain-creds", "broken": "no-keys"}
    for name, secret in cases.items():
        bad = yaml.safe_load(dataset(f"raw-{namespace}"))
        bad["metadata"]["name"] = name
        bad["spec"]["source"]["credentialsSecret"] = {"name": secret}
        kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(bad))
    for name, reason in (("missing", "CredentialsNotFound"), ("unlabelled", "CredentialsNotAllowed")):
        refused = eventually(
            lambda name=name, reason=reason: (
                (c := condition(kubectl, "dataset", name, namespace)).get("reason") == reason and c
            ),
            timeout=120,
        )
        assert cases[name] in refused["message"], refused
        assert kubectl.get("jobs", "-n", namespace, "-l", f"lathe.dev/dataset={name}")["items"] == []
    failed = eventually(
        lambda: (c := condition(kubectl, "dataset", "broken", namespace)).get("reason") == "IngestFailed" and c,
        timeout=180,
    )
    assert "CreateContainerConfigError" in failed["message"] and "no-keys" in failed["message"], failed

    # The operator's identity: what it needs here, nothing outside it.
    account = f"system:serviceaccount:{system}:lathe"
    allowed = {
        ("create", "jobs", namespace): "yes",
        ("update", "deployments", namespace): "yes",
        ("get", "secrets", namespace): "yes",  # a Dataset's credentials Secret, read as metadata only
        ("list", "secrets", namespace): "no",
        ("get", "secrets", system): "no",
        ("get", "secrets", "kube-system"): "no",
        ("create", "jobs", system): "no",
        ("list", "pods", "kube-system"): "no",
    }
    for (verb, resource, where), expected in allowed.items():
        said = kubectl.run("auth", "can-i", verb, resource, "-n", where, f"--as={account}", check=False).stdout
        assert said.strip() == expected, (verb, resource, where, said)

    # No credential anywhere it should not be: the store's secret key and any bearer token (a JWT)
    # in no object's spec or status, Event, pod log, or object that Lathe wrote to the store.
    leaked = credential_leaks(kubectl, (namespace, system), reachable_s3)
    assert leaked == [], leaked


JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")


def credential_leaks(kubectl: Kubectl, namespaces: tuple[str, ...], s3: S3Server) -> list[str]:
    """Where the store's secret key or a token shows up: (place, what) pairs, none expected."""
    texts: dict[str, str] = {}
    kinds = "datasets,trainingruns,modeldeployments,driftmonitors,jobs,deployments,pods,configmaps,services,events"
    for where in namespaces:
        texts[f"{where}: objects"] = kubectl.run("get", kinds, "-n", where, "-o", "json").stdout
        for pod in kubectl.get("pods", "-n", where)["items"]:
            name = pod["metadata"]["name"]
            logs = kubectl.run("logs", "-n", where, name, "--all-containers", check=False)
            texts[f"{where}: logs of {name}"] = logs.stdout
    raw = Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    for bucket in raw.list_buckets():
        for item in raw.list_objects(bucket.name, recursive=True):
            if item.object_name.endswith((".json", ".html", ".txt", ".csv")):
                body = raw.get_object(bucket.name, item.object_name)
                texts[f"s3://{bucket.name}/{item.object_name}"] = body.read().decode(errors="replace")
                body.close()
    assert len(texts) > 20, sorted(texts)  # it looked at the run's reports, logs and objects
    found = []
    for place, text in texts.items():
        if s3.secret_key in text:
            found.append(f"{place}: the store's secret key")
        if JWT.search(text):
            found.append(f"{place}: a bearer token")
    return found

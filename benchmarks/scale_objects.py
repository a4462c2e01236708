"""The objects ``operator_scale.py`` creates, the backends it plays, and the watch that counts their status changes.

Datasets and TrainingRuns are the examples' (examples/01-dataset, examples/02-training-run),
numbered: TrainingRun i trains on Dataset i. The Datasets have no ``refresh``: the clock
passing a whole hour mid-run would start N more ingests. ``Player`` does what a cluster
would do once the operator has started a run: the ingest Job's report in the store (no
node runs the Job's pod here); the KFP run's states in the fake KFP API and the report
the pipeline's register step writes. ``Tracker`` watches both kinds and plays each run
as soon as a status says it started.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections import Counter
from typing import Any

from kubernetes import client, watch

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.runs import write_report
from lathe_core.store import ObjectStore
from tests.conftest import ROOT, load_yaml
from tests.servers.kfp_fake import FakeKfp

GROUP, VERSION = "lathe.dev", "v1alpha1"
DATASET = load_yaml(ROOT / "examples/01-dataset/dataset.yaml")
TRAINING_RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun.yaml")
SETTLED = {"datasets": "Published", "trainingruns": "Registered"}  # the Ready reason each kind settles with


def manifests(n: int) -> list[tuple[str, dict[str, Any]]]:
    """(plural, body) for n Datasets and n TrainingRuns, interleaved."""
    found = []
    for i in range(n):
        dataset = copy.deepcopy(DATASET)
        dataset["metadata"]["name"] = f"digits-{i:04d}"
        del dataset["spec"]["refresh"]  # an hour boundary mid-run would start N more ingests
        run = copy.deepcopy(TRAINING_RUN)
        run["metadata"]["name"] = f"digits-mlp-{i:04d}"
        run["spec"]["dataset"]["name"] = f"digits-{i:04d}"
        run["spec"]["model"]["name"] = f"digits-classifier-{i:04d}"
        found += [("datasets", dataset), ("trainingruns", run)]
    return found


def credentials_secret() -> dict[str, Any]:
    """The examples' store-creds, opted in (as tests/integration/test_operator.py makes it)."""
    metadata = {"name": "store-creds", "labels": {"lathe.dev/credentials": "true"}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "stringData": {"accessKey": "a", "secretKey": "s"},
    }


class Player:
    """The cluster's side of a run: what the ingest Job and the KFP run would leave behind, at once."""

    def __init__(self, store: ObjectStore, kfp: FakeKfp) -> None:
        self.store, self.kfp = store, kfp
        self.pipelines: Counter[tuple[str, ...]] = Counter()  # the tasks of each submitted pipeline: one set expected

    def ingest(self, namespace: str, name: str, run: str) -> None:
        versions = DatasetVersions(self.store, namespace, name)
        version = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        found = {"version": version, "rows": 1797, "columns": 65, "uri": self.store.uri(versions.key(version, ""))}
        validation = {"evaluated": 4, "successful": 4, "failed": 0, "failures": []}
        message = f"Published {version} (1797 rows)"
        report = {"outcome": "Published", "reason": "Published", **found, "validation": validation, "message": message}
        versions.put_report(run, report)

    def train(self, namespace: str, model: str, run_id: str) -> None:
        """Move the KFP run along as its controller would, writing the report its register step writes."""
        self.kfp.set_state(run_id, "RUNNING")
        with self.kfp.lock:
            run = self.kfp.runs[run_id]
            key = run["runtime_config"]["parameters"]["report_key"]
            pipeline = run["pipeline_spec"].get("pipeline_spec", run["pipeline_spec"])
            self.pipelines[tuple(sorted(pipeline["root"]["dag"]["tasks"]))] += 1
        assert key.startswith(layout.model_prefix(namespace, model))
        gates = [{"metric": "accuracy", "value": 0.95, "min": 0.9, "passed": True}]
        model_uri = ModelRegistry(self.store, namespace, model).store_uri(1)
        registered = {"version": 1, "sha256": hashlib.sha256(model.encode()).hexdigest(), "uri": model_uri}
        report = {"outcome": "Succeeded", "reason": "Registered", "message": f"Registered {model} version 1"}
        report |= {"metrics": {"accuracy": 0.95, "macro_f1": 0.95}, "gates": gates, "passed": True, "device": "cpu"}
        write_report(self.store, key, report | registered)
        self.kfp.set_state(run_id, "SUCCEEDED")


def ready_reason(status: dict[str, Any]) -> str:
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return f"{ready.get('status', '')}/{ready.get('reason', '')}"


class Tracker:
    """Watches Datasets and TrainingRuns in one namespace: status changes, Ready transitions, settle times."""

    def __init__(self, api: client.ApiClient, namespace: str, player: Player) -> None:
        self.custom, self.namespace, self.player = client.CustomObjectsApi(api), namespace, player
        self.status: dict[tuple[str, str], dict[str, Any]] = {}
        # (when, plural, whether Ready's status or reason changed) of each watch event whose status changed
        self.changes: list[tuple[float, str, bool]] = []
        self.settled: dict[tuple[str, str], float] = {}  # (plural, name) -> when first seen settled
        self.played: set[str] = set()
        self.errors: list[str] = []
        self.lock = threading.Lock()  # one watch thread per kind, both counting
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._watch, args=(p,), daemon=True) for p in SETTLED]

    def start(self) -> Tracker:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(40)

    def _list(self, plural: str) -> str:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)
        for item in listed["items"]:
            self._seen(plural, item)
        return str(listed["metadata"]["resourceVersion"])

    def _watch(self, plural: str) -> None:
        version = self._list(plural)
        while not self.stopping.is_set():
            try:
                for event in watch.Watch().stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    plural,
                    resource_version=version,
                    timeout_seconds=20,
                ):
                    if event["type"] == "ERROR":
                        raise RuntimeError(str(event["object"]))
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._seen(plural, event["object"])
                    if self.stopping.is_set():
                        return
            except Exception as error:  # an expired resourceVersion (410) or a dropped stream: list again
                self.errors.append(f"{plural} watch: {type(error).__name__}: {str(error)[:200]}")
                time.sleep(0.5)
                version = self._list(plural)

    def _seen(self, plural: str, obj: dict[str, Any]) -> None:
        key, status = (plural, obj["metadata"]["name"]), obj.get("status") or {}
        before = self.status.get(key, {})
        if status == before:
            return
        reason = ready_reason(status)
        with self.lock:
            self.status[key] = status
            self.changes.append((time.monotonic(), plural, reason != ready_reason(before)))
            if reason == f"True/{SETTLED[plural]}":
                self.settled.setdefault(key, time.monotonic())
        try:
            self._play(plural, obj, status)
        except Exception as error:
            self.errors.append(f"playing {key}: {type(error).__name__}: {error}")

    def _play(self, plural: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
        last = status.get("lastRun") or {}
        if plural == "datasets" and last.get("outcome") == "Running" and last["name"] not in self.played:
            self.played.add(last["name"])
            self.player.ingest(self.namespace, obj["metadata"]["name"], last["name"])
        elif plural == "trainingruns" and status.get("runId") and status["runId"] not in self.played:
            self.played.add(status["runId"])
            self.player.train(self.namespace, obj["spec"]["model"]["name"], status["runId"])

    def snapshot(self) -> tuple[dict[tuple[str, str], float], list[tuple[float, str, bool]]]:
        """What has settled, and the status changes seen, so far."""
        with self.lock:
            return dict(self.settled), list(self.changes)

    def reasons(self) -> dict[str, int]:
        """How many objects of each kind sit at each Ready status/reason now."""
        counts: dict[str, int] = {}
        for (plural, _), status in list(self.status.items()):
            label = f"{plural} {ready_reason(status)}"
            counts[label] = counts.get(label, 0) + 1
        return counts

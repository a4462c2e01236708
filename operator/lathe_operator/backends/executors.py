"""Where ingest runs execute: a Kubernetes Job (cluster) or a local process (local mode).

Both run the same ``lathe ingest`` command and are found again by run name; the run's
report in the object store is the source of truth for how it ended.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

from ..api.v1alpha1 import Dataset
from ..config import Config
from .ports import Kube
from .processes import LocalProcesses, RunState


class MissingInput(Exception):
    """A Secret or ConfigMap the run needs does not exist (yet)."""

    reason = "CredentialsNotFound"


class Executor(Protocol):
    def state(self, dataset: Dataset, run: str) -> RunState: ...

    def start(self, dataset: Dataset, run: str, parent: str | None) -> bool: ...


class JobExecutor:
    """``render(dataset, run, parent)`` gives the Job manifest (reconcile.ingest_job, wired by the handlers)."""

    def __init__(self, kube: Kube, render: Callable[[Dataset, str, str | None], dict[str, Any]]) -> None:
        self.kube, self.render = kube, render

    def state(self, dataset: Dataset, run: str) -> RunState:
        return job_state(self.kube, dataset.namespace, run)

    def start(self, dataset: Dataset, run: str, parent: str | None) -> bool:
        return self.kube.ensure(self.render(dataset, run, parent))


class LocalExecutor:
    """``lathe ingest`` as a child process of the operator."""

    def __init__(self, kube: Kube, config: Config, processes: LocalProcesses | None = None) -> None:
        self.kube, self.config = kube, config
        self.processes = processes or LocalProcesses()

    def state(self, dataset: Dataset, run: str) -> RunState:
        return self.processes.state(f"{dataset.namespace}/{run}")

    def start(self, dataset: Dataset, run: str, parent: str | None) -> bool:
        key = f"{dataset.namespace}/{run}"
        if key in self.processes.runs:
            return False
        source = dataset.spec.source
        env = {**os.environ, **store_env(self.config), "LATHE_DATASET_SPEC": json.dumps(dataset.spec.dump())}
        args = [sys.executable, "-m", "lathe_operator", "ingest", "--namespace", dataset.namespace,
                "--name", dataset.name, "--run", run]
        if parent:
            args += ["--parent", parent]
        if source.credentials_secret:
            ref = source.credentials_secret
            secret = self.kube.data("Secret", dataset.namespace, ref.name)
            if secret is None or ref.access_key_key not in secret or ref.secret_key_key not in secret:
                raise MissingInput(f"Secret {ref.name} with keys {ref.access_key_key}, {ref.secret_key_key} not found")
            env.update(LATHE_SOURCE_ACCESS_KEY=secret[ref.access_key_key], LATHE_SOURCE_SECRET_KEY=secret[ref.secret_key_key])
        if source.config_map:
            data = self.kube.data("ConfigMap", dataset.namespace, source.config_map.name)
            if data is None or source.config_map.key not in data:
                error = MissingInput(f"ConfigMap {source.config_map.name} with key {source.config_map.key} not found")
                error.reason = "SourceNotFound"
                raise error
            path = self.processes.path(key, "source")
            path.write_text(data[source.config_map.key])
            args += ["--source-path", str(path)]
        return self.processes.start(key, args, env)


def job_state(kube: Kube, namespace: str, run: str) -> RunState:
    """A run's Job: Absent, Running, or Failed once it ended without the report (read first) that would say more."""
    job = kube.get("batch/v1", "Job", namespace, run)
    if job is None:
        return RunState("Absent")
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Failed", "Complete"):
            return RunState("Failed", f"Job {run}: {condition.get('reason', '')} {condition.get('message', '')}")
    return RunState("Running")


def store_env(config: Config) -> dict[str, str]:
    """The environment that points a child process at Lathe's store."""
    store = config.store
    return {"LATHE_STORE_URI": store.uri, "LATHE_STORE_ENDPOINT": store.endpoint,
            "LATHE_STORE_SECURE": str(store.secure).lower(), "LATHE_STORE_ACCESS_KEY": store.access_key,
            "LATHE_STORE_SECRET_KEY": store.secret_key}

"""Where runs execute: a Kubernetes Job (cluster) or a child process (local mode); one port, two adapters.

Both run ``lathe <args>`` of a ``RunRequest`` (ingest, batch scoring, edge bundles) and
find it again by name; the run's report in the object store is the source of truth for
how it ended, so ``state`` only tells Absent, Running, or Failed without a report.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

from lathe_core.runs import RunRequest, RunState
from lathe_core.settings import StoreSettings

from .ports import Kube
from .processes import LocalProcesses


class MissingInput(Exception):
    """A Secret or ConfigMap the run needs does not exist (yet)."""

    def __init__(self, message: str, reason: str = "CredentialsNotFound") -> None:
        super().__init__(message)
        self.reason = reason


class Executor(Protocol):
    def state(self, namespace: str, run: str) -> RunState:
        """Absent, Running, or Failed when it ended without the report that would say more."""

    def start(self, request: RunRequest) -> bool:
        """Start the run unless it exists; True when this call started it."""


class JobExecutor:
    """``render(request)`` gives the Job manifest (``reconcile.jobs.manifest``, wired by the handlers)."""

    def __init__(self, kube: Kube, render: Callable[[RunRequest], dict[str, Any]]) -> None:
        self.kube, self.render = kube, render

    def state(self, namespace: str, run: str) -> RunState:
        job = self.kube.get("batch/v1", "Job", namespace, run)
        if job is None:
            return RunState("Absent")
        for condition in (job.get("status") or {}).get("conditions") or []:
            if condition.get("status") == "True" and condition.get("type") in ("Failed", "Complete"):
                detail = f"{condition.get('reason', '')} {condition.get('message', '')}"
                return RunState("Failed", message=f"Job {run}: {detail}")
        return RunState("Running")

    def start(self, request: RunRequest) -> bool:
        return self.kube.ensure(self.render(request))


class LocalExecutor:
    """``python -m lathe_pipelines <args>`` as a child process, Secrets and ConfigMaps read through the API."""

    def __init__(self, kube: Kube, store: StoreSettings, processes: LocalProcesses | None = None) -> None:
        self.kube, self.store = kube, store
        self.processes = processes or LocalProcesses()

    def state(self, namespace: str, run: str) -> RunState:
        return self.processes.state(f"{namespace}/{run}")

    def start(self, request: RunRequest) -> bool:
        key = f"{request.namespace}/{request.name}"
        if key in self.processes.runs:
            return False
        env = {**os.environ, **self.store.env(), **request.env}
        for name, (secret, field) in request.secret_env.items():
            data = self.kube.data("Secret", request.namespace, secret)
            if data is None or field not in data:
                fields = ", ".join(f for s, f in request.secret_env.values() if s == secret)
                raise MissingInput(f"Secret {secret} with keys {fields} not found")
            env[name] = data[field]
        args = [sys.executable, "-m", "lathe_pipelines", *request.args]
        if request.source_file is not None:
            config_map, field = request.source_file
            data = self.kube.data("ConfigMap", request.namespace, config_map)
            if data is None or field not in data:
                raise MissingInput(f"ConfigMap {config_map} with key {field} not found", "SourceNotFound")
            path = self.processes.path(key, "source")
            path.write_text(data[field])
            args += ["--source-path", str(path)]
        return self.processes.start(key, args, env)

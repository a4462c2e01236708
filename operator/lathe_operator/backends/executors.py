"""Where runs execute: a Kubernetes Job (cluster) or a child process (local mode); one port, two adapters.

Both run ``lathe <args>`` of a ``RunRequest`` (ingest, batch scoring, edge bundles) and
find it again by name; the run's report in the object store is the source of truth for
how it ended, so ``state`` only tells Absent, Running, or Failed without a report.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from lathe_core.runs import RunRequest, RunState
from lathe_core.settings import StoreSettings

from .ports import Kube
from .processes import LocalProcesses

ACCOUNT_RECHECK = 300.0  # seconds: a ServiceAccount someone deleted comes back within this
FAILURE = "lathe.dev/failure"  # on a Job the executor ended: why its pod could not run
# Local mode's ingest may read local paths and private addresses (lathe_pipelines.steps.fetch);
# ingest Jobs may not, so JobExecutor never sets these. The operator's own environment wins.
LOCAL_SOURCES = {"LATHE_SOURCES_ALLOW_PRIVATE": "true", "LATHE_SOURCES_ALLOW_LOCAL": "true"}


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
    """``render(request)`` gives the Job manifest (``reconcile.jobs.manifest``, wired by the handlers).

    A Job whose pod cannot start (an image that is not there, a Secret that is missing) or
    whose pods cannot be created (a missing ServiceAccount, a refused security policy) would
    stay active for ever: the executor ends it (``activeDeadlineSeconds`` lowered to 1, so
    the Job controller fails it and removes its pods) and keeps the reason in an annotation,
    which ``state`` reports from then on."""

    def __init__(
        self,
        kube: Kube,
        render: Callable[[RunRequest], dict[str, Any]],
        blocked: Callable[[list[dict[str, Any]], list[dict[str, Any]]], str | None],
        service_account: str = "",
        store_access: Callable[[str], None] | None = None,
    ) -> None:
        """``blocked(pods, events)`` says why a Job's pods cannot run (``reconcile.pods.blocked``);
        ``store_access(namespace)`` makes sure of the store Secret the Jobs there read (``store_access``)."""
        self.kube, self.render, self.blocked, self.service_account = kube, render, blocked, service_account
        self.store_access = store_access
        self._accounts: dict[str, float] = {}  # namespace: when its ServiceAccount was last made sure of

    def state(self, namespace: str, run: str) -> RunState:
        job = self.kube.get("batch/v1", "Job", namespace, run)
        if job is None:
            return RunState("Absent")
        given_up = ((job.get("metadata") or {}).get("annotations") or {}).get(FAILURE)
        for condition in (job.get("status") or {}).get("conditions") or []:
            if condition.get("status") == "True" and condition.get("type") in ("Failed", "Complete"):
                detail = given_up or f"{condition.get('reason', '')} {condition.get('message', '')}"
                return RunState("Failed", message=f"Job {run}: {detail}")
        why = given_up or self._blocked(namespace, run)
        if why is None:
            return RunState("Running")
        if not given_up:
            self.kube.patch(
                "batch/v1",
                "Job",
                namespace,
                run,
                {"metadata": {"annotations": {FAILURE: why}}, "spec": {"activeDeadlineSeconds": 1}},
            )
        return RunState("Failed", message=f"Job {run}: {why}")

    def _blocked(self, namespace: str, run: str) -> str | None:
        pods = self.kube.list("v1", "Pod", namespace, labels=f"batch.kubernetes.io/job-name={run}")
        events = [] if pods else self.kube.list("v1", "Event", namespace, fields=f"involvedObject.name={run}")
        return self.blocked(pods, [e for e in events if (e.get("involvedObject") or {}).get("kind") == "Job"])

    def start(self, request: RunRequest) -> bool:
        """Create the run's Job; its namespace's store Secret and ServiceAccount first, the account once every
        ``ACCOUNT_RECHECK`` seconds (not a create per run: a thousand ingests would be a thousand refused POSTs)."""
        if self.store_access is not None:
            self.store_access(request.namespace)
        ensured = self._accounts.get(request.namespace)
        if self.service_account and (ensured is None or time.monotonic() - ensured > ACCOUNT_RECHECK):
            self.kube.ensure(service_account(request.namespace, self.service_account))
            self._accounts[request.namespace] = time.monotonic()
        return self.kube.ensure(self.render(request))


def service_account(namespace: str, name: str) -> dict[str, Any]:
    """The run Jobs' ServiceAccount: no API access (no RoleBinding, no token mounted). Create it
    yourself beforehand to give it annotations, such as a cloud workload identity."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "lathe"}},
        "automountServiceAccountToken": False,
    }


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
        local = LOCAL_SOURCES if request.component == "ingest" else {}
        env = {**local, **os.environ, **self.store.env(), **request.env}
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

"""Kubeflow Pipelines backend: runs submitted through the KFP v2 API with ``kfp.Client``.

One experiment per namespace (or the TrainingRun's ``spec.pipeline.experiment``); a run's
display name is the deterministic run name, and the run is looked up by that name before
one is created, so an operator restart never launches a second run.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

from lathe_core.runs import RunState

LIVE = {"PENDING", "RUNNING", "PAUSED", "CANCELING", "RUNTIME_STATE_UNSPECIFIED"}


class PipelineBackendUnavailable(Exception):
    reason = "PipelineBackendUnavailable"


class KfpPipelines:
    def __init__(
        self,
        host: str,
        ui_url: str | None = None,
        token: str | None = None,
        store_secret: str = "lathe-store",
        store_env: dict[str, str] | None = None,
    ) -> None:
        self.host, self.ui_url, self.token = host.rstrip("/"), (ui_url or host).rstrip("/"), token
        self.store_secret, self.store_env = store_secret, store_env or {}
        self._client: Any = None
        self._experiments: dict[str, str] = {}
        self._lock = threading.Lock()
        self._experiments_lock = threading.Lock()

    def _api(self) -> Any:
        import kfp

        with self._lock:
            if self._client is None:
                try:
                    self._client = kfp.Client(host=self.host, existing_token=self.token)
                except Exception as error:  # kfp.Client probes /healthz and raises TimeoutError when down
                    raise PipelineBackendUnavailable(f"KFP API at {self.host}: {error}") from error
            return self._client

    def _call(self, action: Any) -> Any:
        try:
            return action(self._api())
        except PipelineBackendUnavailable:
            raise
        except Exception as error:  # kfp_server_api.ApiException, urllib3 and socket errors
            status = getattr(error, "status", None)
            raise PipelineBackendUnavailable(
                f"KFP API at {self.host} answered {status or type(error).__name__}: {str(error).splitlines()[0][:300]}"
            ) from error

    def _experiment(self, name: str) -> str:
        """The experiment's id, created on first use. One thread at a time: kfp's create_experiment looks the
        name up and then creates it, so two TrainingRuns starting together would make two of one name."""
        with self._experiments_lock:
            if name not in self._experiments:
                self._experiments[name] = self._call(lambda c: c.create_experiment(name=name)).experiment_id
            return self._experiments[name]

    def _find(self, experiment: str, run: str) -> Any:
        query = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": run}]})
        found = self._call(lambda c: c.list_runs(experiment_id=self._experiment(experiment), filter=query))
        runs = [r for r in (found.runs or []) if r.display_name == run]
        return runs[0] if runs else None

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/#/runs/details/{run_id}"

    def state(self, namespace: str, run: str, experiment: str | None = None) -> RunState:
        found = self._find(experiment or namespace, run)
        if found is None:
            return RunState("Absent")
        state = str(found.state or "RUNTIME_STATE_UNSPECIFIED")
        if state in LIVE:
            return RunState("Running", run_id=found.run_id)
        if state == "SUCCEEDED":  # its last step writes the report; until it shows up, keep looking
            return RunState("Running", run_id=found.run_id)
        error = getattr(found, "error", None)
        detail = getattr(error, "message", None) or state
        return RunState("Failed", message=f"KFP run {found.run_id} {state}: {detail}", run_id=found.run_id)

    def submit(
        self,
        namespace: str,
        run: str,
        arguments: dict[str, Any],
        resources: dict[str, Any],
        caching: bool,
        experiment: str | None = None,
        owner: dict[str, Any] | None = None,  # the Job backend's; runs here are not Kubernetes objects
    ) -> str:
        from lathe_pipelines import training

        existing = self._find(experiment or namespace, run)
        if existing is not None:
            return str(existing.run_id)
        with tempfile.TemporaryDirectory() as tmp:
            package = Path(tmp) / f"{run}.yaml"
            package.write_text(
                training.compiled(resources, store_secret=self.store_secret, store_env=self.store_env, caching=caching)
            )
            created = self._call(
                lambda c: c.run_pipeline(
                    experiment_id=self._experiment(experiment or namespace),
                    job_name=run,
                    pipeline_package_path=str(package),
                    params=arguments,
                    enable_caching=caching,
                )
            )
        return str(created.run_id)

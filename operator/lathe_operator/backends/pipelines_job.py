"""Job pipeline backend: the training pipeline under kfp.local in one Job pod of the pipelines image.

For clusters without Kubeflow Pipelines: the same compiled pipeline and steps as the KFP
and local backends, its steps run as processes inside the pod, on the TrainingRun's node
pool. The run's report in the store says how it ended, as for every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from lathe_core.runs import RunRequest, RunState

from .executors import JobExecutor


class JobPipelines:
    def __init__(self, executor: JobExecutor, request: Callable[..., RunRequest]) -> None:
        """``request(namespace, run, arguments, resources, caching, owner)`` gives the run's
        ``RunRequest`` (``reconcile.jobs.training_request``, wired by the handlers)."""
        self.executor, self.request = executor, request

    def state(self, namespace: str, run: str, experiment: str | None = None) -> RunState:
        """The Job's state; its id is the run's name (``submit`` returns it), so status gets it even when
        the operator died before it wrote what ``submit`` returned."""
        state = self.executor.state(namespace, run)
        return state if state.phase == "Absent" else replace(state, run_id=run)

    def run_url(self, run_id: str) -> str | None:
        return None  # `kubectl logs job/<run>` shows its steps

    def submit(
        self,
        namespace: str,
        run: str,
        arguments: dict[str, Any],
        resources: dict[str, Any],
        caching: bool,
        experiment: str | None = None,
        owner: dict[str, Any] | None = None,
    ) -> str:
        self.executor.start(self.request(namespace, run, arguments, resources, caching, owner or {}))
        return run

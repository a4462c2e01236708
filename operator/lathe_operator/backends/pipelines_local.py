"""Local pipeline backend: the compiled training pipeline executed for real by kfp.local, in a child process."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from typing import Any

from lathe_core.runs import RunState

from ..config import Config
from .processes import LocalProcesses


class LocalPipelines:
    def __init__(self, config: Config, processes: LocalProcesses | None = None) -> None:
        self.config = config
        self.processes = processes or LocalProcesses()

    def state(self, namespace: str, run: str, experiment: str | None = None) -> RunState:
        """The process's state, with the run's name as its id (what ``submit`` returns)."""
        state = self.processes.state(f"{namespace}/{run}")
        return state if state.phase == "Absent" else replace(state, run_id=run)

    def run_url(self, run_id: str) -> str | None:
        return None  # no UI in local mode; the run's files are under the pipeline root

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
        key = f"{namespace}/{run}"
        request = {
            "arguments": arguments,
            "resources": resources,
            "caching": caching,
            "pipelineRoot": str(self.processes.path(key, "root")),
        }
        env = {**os.environ, **self.config.store.env(), "LATHE_TRAINING_REQUEST": json.dumps(request)}
        self.processes.start(key, [sys.executable, "-m", "lathe_pipelines", "train"], env)
        return run

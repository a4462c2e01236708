"""Operator settings from the environment, set by the Helm chart or the local runner."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    pipelines_image: str = "ghcr.io/lathe-dev/lathe-pipelines:0.1.0"
    job_service_account: str = "lathe-jobs"
    metrics_port: int = 9090

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            pipelines_image=os.environ.get("LATHE_PIPELINES_IMAGE", cls.pipelines_image),
            job_service_account=os.environ.get("LATHE_JOB_SERVICE_ACCOUNT", cls.job_service_account),
            metrics_port=int(os.environ.get("LATHE_METRICS_PORT", cls.metrics_port)),
        )

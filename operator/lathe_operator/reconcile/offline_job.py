"""The batch/v1 Job that runs a batch or edge ModelDeployment in a cluster (``lathe score|bundle``)."""

from __future__ import annotations

from typing import Any

from ..api.v1alpha1.model_deployment import ModelDeployment
from ..config import StoreSettings
from .jobs import job, store_env_vars
from .plan import MANAGED_BY


def offline_job(md: ModelDeployment, run: str, args: list[str], *, image: str, service_account: str,
                store: StoreSettings) -> dict[str, Any]:
    labels = {**MANAGED_BY, "lathe.dev/model-deployment": md.name, "app.kubernetes.io/component": md.spec.mode}
    container = {"name": md.spec.mode, "image": image, "args": ["lathe", *args], "env": store_env_vars(store),
                 "resources": md.spec.resources.container()}
    return job(md, run, labels, container, service_account=service_account)

"""The batch/v1 Job that runs a batch or edge ModelDeployment in a cluster (``lathe score|bundle``)."""

from __future__ import annotations

from typing import Any

from ..api.v1alpha1.model_deployment import ModelDeployment
from ..config import StoreSettings
from .ingest_job import store_env_vars
from .plan import MANAGED_BY, owner_reference


def offline_job(md: ModelDeployment, run: str, args: list[str], *, image: str, service_account: str,
                store: StoreSettings) -> dict[str, Any]:
    labels = {**MANAGED_BY, "lathe.dev/model-deployment": md.name, "app.kubernetes.io/component": md.spec.mode}
    resources = {k: v for k, v in (("cpu", md.spec.resources.cpu), ("memory", md.spec.resources.memory)) if v}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": run, "namespace": md.namespace, "labels": labels,
                     "annotations": {"lathe.dev/generation": str(md.generation)},
                     "ownerReferences": [owner_reference(md)]},
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": md.spec.mode,
                        "image": image,
                        "args": ["lathe", *args],
                        "env": store_env_vars(store),
                        "resources": {"requests": resources, "limits": resources} if resources else {},
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    }],
                },
            },
        },
    }

"""The batch/v1 Job shape every Lathe run uses (ingest, batch scoring, edge bundles), and its store environment."""

from __future__ import annotations

from typing import Any

from ..api.v1alpha1 import Resource
from ..config import StoreSettings
from .plan import owner_reference


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def store_env_vars(store: StoreSettings) -> list[dict[str, Any]]:
    """A Job container's environment pointing at Lathe's store, keys from the store Secret."""
    return [
        {"name": "LATHE_STORE_URI", "value": store.uri},
        {"name": "LATHE_STORE_ENDPOINT", "value": store.endpoint},
        {"name": "LATHE_STORE_SECURE", "value": str(store.secure).lower()},
        secret_env("LATHE_STORE_ACCESS_KEY", store.secret_name, "accessKey"),
        secret_env("LATHE_STORE_SECRET_KEY", store.secret_name, "secretKey"),
    ]


def job(owner: Resource, run: str, labels: dict[str, str], container: dict[str, Any], *, service_account: str,
        volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One run as a Job owned by ``owner``: non-root, no privilege escalation, never restarted in place."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": run, "namespace": owner.namespace, "labels": labels,
                     "annotations": {"lathe.dev/generation": str(owner.generation)},
                     "ownerReferences": [owner_reference(owner)]},
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
                    "volumes": volumes or [],
                    "containers": [{**container, "securityContext": {"allowPrivilegeEscalation": False,
                                                                     "capabilities": {"drop": ["ALL"]}}}],
                },
            },
        },
    }

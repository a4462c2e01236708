"""The batch/v1 Job that runs one ingest in a cluster (``lathe ingest`` in the pipelines image)."""

from __future__ import annotations

import json
from typing import Any

from ..api.v1alpha1 import Dataset
from ..config import StoreSettings
from .plan import MANAGED_BY, owner_reference

CONFIGMAP_MOUNT = "/var/run/lathe/source"


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def store_env_vars(store: StoreSettings) -> list[dict[str, Any]]:
    """A Job container's environment pointing at Lathe's store, keys from the store Secret."""
    return [
        {"name": "LATHE_STORE_URI", "value": store.uri},
        {"name": "LATHE_STORE_ENDPOINT", "value": store.endpoint},
        {"name": "LATHE_STORE_SECURE", "value": str(store.secure).lower()},
        _secret_env("LATHE_STORE_ACCESS_KEY", store.secret_name, "accessKey"),
        _secret_env("LATHE_STORE_SECRET_KEY", store.secret_name, "secretKey"),
    ]


def ingest_job(
    dataset: Dataset, run: str, parent: str | None, *, image: str, service_account: str, store: StoreSettings
) -> dict[str, Any]:
    source = dataset.spec.source
    labels = {**MANAGED_BY, "lathe.dev/dataset": dataset.name, "app.kubernetes.io/component": "ingest"}
    args = ["lathe", "ingest", "--namespace", dataset.namespace, "--name", dataset.name, "--run", run]
    env: list[dict[str, Any]] = [
        {"name": "LATHE_DATASET_SPEC", "value": json.dumps(dataset.spec.dump(), sort_keys=True)},
        *store_env_vars(store),
    ]
    if parent:
        args += ["--parent", parent]
    if source.credentials_secret:
        ref = source.credentials_secret
        env += [
            _secret_env("LATHE_SOURCE_ACCESS_KEY", ref.name, ref.access_key_key),
            _secret_env("LATHE_SOURCE_SECRET_KEY", ref.name, ref.secret_key_key),
        ]
    volumes, mounts = [], []
    if source.config_map:
        volumes = [{"name": "source", "configMap": {"name": source.config_map.name}}]
        mounts = [{"name": "source", "mountPath": CONFIGMAP_MOUNT, "readOnly": True}]
        args += ["--source-path", f"{CONFIGMAP_MOUNT}/{source.config_map.key}"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run,
            "namespace": dataset.namespace,
            "labels": labels,
            "annotations": {"lathe.dev/generation": str(dataset.generation)},
            "ownerReferences": [owner_reference(dataset)],
        },
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
                    "volumes": volumes,
                    "containers": [
                        {
                            "name": "ingest",
                            "image": image,
                            "args": args,
                            "env": env,
                            "volumeMounts": mounts,
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        }
                    ],
                },
            },
        },
    }

"""The batch/v1 Job that runs one ingest in a cluster (``lathe ingest`` in the pipelines image)."""

from __future__ import annotations

import json
from typing import Any

from ..api.v1alpha1 import Dataset
from ..config import StoreSettings
from .jobs import job, secret_env, store_env_vars
from .plan import MANAGED_BY

CONFIGMAP_MOUNT = "/var/run/lathe/source"


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
            secret_env("LATHE_SOURCE_ACCESS_KEY", ref.name, ref.access_key_key),
            secret_env("LATHE_SOURCE_SECRET_KEY", ref.name, ref.secret_key_key),
        ]
    volumes, mounts = [], []
    if source.config_map:
        volumes = [{"name": "source", "configMap": {"name": source.config_map.name}}]
        mounts = [{"name": "source", "mountPath": CONFIGMAP_MOUNT, "readOnly": True}]
        args += ["--source-path", f"{CONFIGMAP_MOUNT}/{source.config_map.key}"]
    container = {"name": "ingest", "image": image, "args": args, "env": env, "volumeMounts": mounts}
    return job(dataset, run, labels, container, service_account=service_account, volumes=volumes)

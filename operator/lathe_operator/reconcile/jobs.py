"""The batch/v1 Job that runs a ``RunRequest`` in a cluster (ingest, batch scoring, edge bundles,
drift checks, harvests; and training with ``pipelines.backend: job``).

Every run has the same shape: ``lathe <args>`` in the jobs image (training: the pipelines
image), non-root, never restarted in place, owned by the object it runs for, the store's
settings in its environment and its keys from the store Secret.
"""

from __future__ import annotations

import json
from typing import Any

from lathe_core.runs import RunRequest
from lathe_core.settings import SECRET_KEYS, StoreSettings

SOURCE_MOUNT = "/var/run/lathe/source"


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def store_env_vars(store: StoreSettings) -> list[dict[str, Any]]:
    """A container's environment pointing at Lathe's store, keys from the store Secret."""
    plain = [{"name": name, "value": value} for name, value in store.env(keys=False).items()]
    return plain + [secret_env(name, store.secret_name, key) for key, name in SECRET_KEYS.items()]


def manifest(
    request: RunRequest,
    *,
    image: str,
    service_account: str,
    store: StoreSettings,
    deadline: int = 6 * 3600,
    denied_cidrs: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The Job for one run, named after it: admitted by the restricted Pod Security Standard, a
    read-only root file system with scratch space in /tmp, no API token."""
    args = ["lathe", *request.args]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if request.source_file is not None:
        config_map, key = request.source_file
        # only that key, at its own name: the schema allows no '/' in a key, and nothing else of the ConfigMap is there
        volumes.append({"name": "source", "configMap": {"name": config_map, "items": [{"key": key, "path": key}]}})
        mounts.append({"name": "source", "mountPath": SOURCE_MOUNT, "readOnly": True})
        args += ["--source-path", f"{SOURCE_MOUNT}/{key}"]
    env = [{"name": k, "value": v} for k, v in request.env.items()] + store_env_vars(store)
    env.append({"name": "HOME", "value": "/tmp"})  # libraries that keep a cache in $HOME write to scratch
    if denied_cidrs:  # what a Dataset's http(s) source may never reach, IPv6 global unicast pod addresses included
        env.append({"name": "LATHE_SOURCES_DENIED_CIDRS", "value": ",".join(denied_cidrs)})
    env += [secret_env(name, secret, key) for name, (secret, key) in request.secret_env.items()]
    container: dict[str, Any] = {
        "name": request.component,
        "image": image,
        "args": args,
        "env": env,
        "volumeMounts": mounts,
    }
    if request.resources is not None:
        container["resources"] = request.resources
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": request.labels,
            "annotations": {"lathe.dev/generation": str(request.generation)},
            **({"ownerReferences": [request.owner]} if request.owner else {}),
        },
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": request.keep_seconds,
            "template": {
                "metadata": {"labels": request.labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "volumes": volumes,
                    **({"nodeSelector": request.node_selector} if request.node_selector else {}),
                    **({"tolerations": request.tolerations} if request.tolerations else {}),
                    "containers": [
                        {
                            **container,
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


GPU_RESOURCE = "nvidia.com/gpu"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"  # as the KFP backend's node selector


def training_request(
    namespace: str, run: str, arguments: dict[str, Any], resources: dict[str, Any], caching: bool, owner: dict[str, Any]
) -> RunRequest:
    """``lathe train`` in one pod: the training pipeline under kfp.local, its steps as processes
    there, on the TrainingRun's node pool (GPUs, accelerator, limits, selector, tolerations)."""
    limits = {k: str(resources[k]) for k in ("cpu", "memory") if resources.get(k)}
    if resources.get("gpus"):
        limits[GPU_RESOURCE] = str(resources["gpus"])
    selector = dict(resources.get("nodeSelector") or {})
    if resources.get("acceleratorType"):
        selector[ACCELERATOR_LABEL] = resources["acceleratorType"]
    request = {"arguments": arguments, "resources": resources, "caching": caching, "pipelineRoot": "/tmp/pipeline"}
    return RunRequest(
        namespace=namespace,
        name=run,
        component="train",
        args=("train",),
        labels={"app.kubernetes.io/managed-by": "lathe", "app.kubernetes.io/component": "train"},
        env={"LATHE_TRAINING_REQUEST": json.dumps(request, sort_keys=True)},
        resources={"limits": limits} if limits else None,
        node_selector=selector,
        tolerations=list(resources.get("tolerations") or []),
        owner=owner,
    )

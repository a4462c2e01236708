"""The batch/v1 Job that runs a ``RunRequest`` in a cluster (ingest, batch scoring, edge bundles,
drift checks, harvests; and training with ``pipelines.backend: job``).

Every run has the same shape: ``lathe <args>`` in the jobs image (training: the pipelines
image), non-root, never restarted in place, owned by the object it runs for, the store's
settings in its environment and its keys from the store Secret.
"""

from __future__ import annotations

import json
from typing import Any

from lathe_core import handover
from lathe_core.runs import RunRequest
from lathe_core.settings import SECRET_KEYS, StoreSettings

SOURCE_MOUNT = "/var/run/lathe/source"


RESTRICTED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def trainer_container(trainer: dict[str, Any], resources: dict[str, Any] | None) -> dict[str, Any]:
    """The team's trainer in its own image: its command under ``handover.WRAPPER``, its env and the contract's
    two, the GPUs; no store Secret, no token (the pod mounts none), and of the pod's volumes only the two it
    shares with the pipeline and a /tmp of its own."""
    env = [{"name": k, "value": str(v)} for k, v in (trainer.get("env") or {}).items()]
    env += [
        {"name": "LATHE_INPUT", "value": handover.INPUT},
        {"name": "LATHE_OUTPUT", "value": handover.OUTPUT},
        {"name": "LATHE_WORKING_DIR", "value": trainer.get("workingDir") or ""},
        {"name": "HOME", "value": "/tmp"},
    ]
    found: dict[str, Any] = {
        "name": "trainer",
        "image": trainer["image"],
        "command": ["sh", "-c", handover.WRAPPER, "lathe-trainer"],
        "args": [*trainer["command"], *trainer.get("args", [])],
        "env": env,
        "volumeMounts": [
            {"name": "trainer-input", "mountPath": handover.INPUT, "readOnly": True},
            {"name": "trainer-output", "mountPath": handover.OUTPUT},
            {"name": "trainer-tmp", "mountPath": "/tmp"},
        ],
    }
    if resources is not None:
        found["resources"] = resources
    return found


def with_trainer(pipeline: dict[str, Any], request: RunRequest, volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pipeline's container and the trainer's, sharing the handover's two volumes; the GPUs go to the trainer."""
    assert request.trainer is not None
    limits = dict((request.resources or {}).get("limits") or {})
    limits.pop(GPU_RESOURCE, None)
    pipeline.pop("resources", None)
    if limits:
        pipeline["resources"] = {"limits": limits}
    pipeline["env"] = [
        *pipeline["env"],
        {"name": handover.INPUT_ENV, "value": handover.INPUT},
        {"name": handover.OUTPUT_ENV, "value": handover.OUTPUT},
    ]
    pipeline["volumeMounts"] = [
        *pipeline["volumeMounts"],
        {"name": "trainer-input", "mountPath": handover.INPUT},
        {"name": "trainer-output", "mountPath": handover.OUTPUT, "readOnly": True},
    ]
    volumes += [{"name": n, "emptyDir": {}} for n in ("trainer-input", "trainer-output", "trainer-tmp")]
    return [pipeline, trainer_container(request.trainer, request.resources)]


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
    containers = [container] if request.trainer is None else with_trainer(container, request, volumes)
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
                    "containers": [{**c, "securityContext": RESTRICTED} for c in containers],
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
        trainer=resources.get("trainer"),
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

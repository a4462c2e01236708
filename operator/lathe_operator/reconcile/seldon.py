"""The SeldonDeployment (machinelearning.seldon.io/v1) that serves a ModelDeployment in a cluster.

One predictor per served version (``v<N>``) with its ``traffic`` share, a ``shadow``
predictor when asked, and Lathe's model server in the serving image, which samples
requests to the store itself (``spec.logging``; Seldon's request ``logger`` is added when
a receiver URL is configured). Seldon's storage
initializer downloads the version's registry folder to /mnt/models (``modelUri`` +
``envSecretRefName``); the model checks its sha256 when it loads.
"""

from __future__ import annotations

from typing import Any

from lathe_core.settings import StoreSettings

from ..api.v1alpha1.model_deployment import ModelDeployment
from .jobs import store_env_vars
from .plan import MANAGED_BY, owner_reference

API_VERSION = "machinelearning.seldon.io/v1"
# Lathe's server registered as a custom inference server in Seldon's seldon-config ConfigMap
# (manifests/seldon/predictor-servers.json): Seldon then runs its storage initializer, which
# downloads ``modelUri`` to /mnt/models with the credentials in ``envSecretRefName``.
IMPLEMENTATION = "LATHE_SERVER"
KIND = "SeldonDeployment"
PORT = 9000


def predictor_name(version: int) -> str:
    return f"v{version}"


def _container(md: ModelDeployment, image: str, store: StoreSettings, recorded: str | None) -> dict[str, Any]:
    probe = {
        "httpGet": {"path": "/health/ping", "port": "http", "scheme": "HTTP"},
        "periodSeconds": 5,
        "failureThreshold": 3,
        "timeoutSeconds": 2,
    }
    args = ["--model-dir", "/mnt/models", "--port", str(PORT), *(("--sha256", recorded) if recorded else ())]
    env = [{"name": "LATHE_NAMESPACE", "value": md.namespace}]
    if md.spec.logging is not None:  # the server writes sampled requests to the store itself
        args += ["--sample-rate", str(md.spec.logging.sample_rate)]
        env += store_env_vars(store)
    return {
        "name": "model",
        "image": image,
        "args": args,
        "env": env,
        "resources": md.spec.resources.container(),
        "readinessProbe": {**probe, "initialDelaySeconds": 5},
        "livenessProbe": {**probe, "initialDelaySeconds": 30},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 8888,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _graph(md: ModelDeployment, model_uri: str, storage_secret: str, logger_url: str | None) -> dict[str, Any]:
    """The model node, behind any transformers; Seldon's logger too when a receiver is configured."""
    node: dict[str, Any] = {
        "name": "model",
        "type": "MODEL",
        "implementation": IMPLEMENTATION,
        "endpoint": {"type": "REST", "httpPort": PORT},
        "modelUri": model_uri,
        "envSecretRefName": storage_secret,
        "parameters": [{"name": "model_dir", "value": "/mnt/models", "type": "STRING"}],
        "children": [],
    }
    if md.spec.logging is not None and logger_url:
        node["logger"] = {"mode": "all", "url": logger_url}
    for transformer in reversed(md.spec.graph.transformers if md.spec.graph else []):
        node = {"name": transformer.name, "type": "TRANSFORMER", "endpoint": {"type": "REST"}, "children": [node]}
    return node


def _component_spec(md: ModelDeployment, image: str, store: StoreSettings, recorded: str | None) -> dict[str, Any]:
    containers = [_container(md, image, store, recorded)]
    for transformer in md.spec.graph.transformers if md.spec.graph else []:
        containers.append(
            {
                "name": transformer.name,
                "image": transformer.image,
                "env": [{"name": k, "value": v} for k, v in sorted(transformer.env.items())],
                "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
            }
        )
    spec: dict[str, Any] = {
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 8888, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": containers,
        }
    }
    scaling = md.spec.autoscaling
    if scaling is not None:
        spec["hpaSpec"] = {
            "minReplicas": max(scaling.min_replicas, 1),
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "lathe_model_in_flight_requests"},
                        "target": {"type": "AverageValue", "averageValue": str(scaling.target_concurrency)},
                    },
                }
            ],
        }
    return spec


def seldon_deployment(
    md: ModelDeployment,
    traffic: list[tuple[int, int]],
    shadow: int | None,
    model_uris: dict[int, str],
    *,
    image: str,
    store: StoreSettings,
    storage_secret: str,
    logger_url: str | None,
    checksums: dict[int, str] | None = None,
) -> dict[str, Any]:
    """The whole object; ``model_uris`` maps each version to its registry folder (s3://bucket/models/ns/name/N/);
    each predictor's server refuses a model.onnx unlike the sha256 in ``checksums`` (its TrainingRun's record)."""
    replicas = md.spec.replicas if md.spec.replicas is not None else (None if md.spec.autoscaling else 1)
    labels = {**MANAGED_BY, "lathe.dev/model-deployment": md.name, "app.kubernetes.io/component": "serving"}

    def predictor(version: int, percent: int, is_shadow: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": predictor_name(version),
            "traffic": percent,
            "labels": {**labels, "lathe.dev/model": md.spec.model.name, "lathe.dev/model-version": str(version)},
            "componentSpecs": [_component_spec(md, image, store, (checksums or {}).get(version))],
            "graph": _graph(md, model_uris[version], storage_secret, logger_url),
        }
        if replicas is not None:
            body["replicas"] = replicas
        if is_shadow:
            body["shadow"] = True
        return body

    predictors = [predictor(version, percent) for version, percent in traffic]
    if shadow is not None:
        predictors.append(predictor(shadow, 0, is_shadow=True))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": md.name,
            "namespace": md.namespace,
            "labels": labels,
            "annotations": {"lathe.dev/generation": str(md.generation)},
            "ownerReferences": [owner_reference(md)],
        },
        "spec": {
            "name": md.name,
            "protocol": "seldon",
            "predictors": predictors,
            "annotations": {"seldon.io/rest-timeout": "10000"},
        },
    }


def observe(found: dict[str, Any] | None) -> tuple[str, str, str | None]:
    """(state, message, endpoint) from what Seldon's controller wrote: Available, Creating, Failed or Absent."""
    if found is None:
        return "Absent", "SeldonDeployment not created yet", None
    status = found.get("status") or {}
    state = str(status.get("state") or "Creating")
    endpoint = (status.get("address") or {}).get("url")
    message = str(status.get("description") or f"SeldonDeployment {found['metadata']['name']} is {state}")
    return state, message, endpoint

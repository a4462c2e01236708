"""Online serving without Seldon (``LATHE_SERVING=kubernetes``): a Deployment and a Service of Lathe's server.

In the spirit of KServe's RawDeployment mode. Each pod's init container fetches the model
versions it serves from the store (``python -m lathe_serving.fetch``); the server then
serves them with the split, the shadow and request logging of a ConfigMap
(``deployment.json``, the same file local mode gives the server). A new split is a new
ConfigMap content, whose hash in the pod template rolls the pods. Store credentials come
from the namespace's store Secret (``accessKey``, ``secretKey``), never from the manifest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lathe_core.settings import ACCESS_KEY, SECRET_KEY, SECRET_KEYS, StoreSettings

from ..api.v1alpha1 import ModelDeployment
from .plan import MANAGED_BY, owner_reference
from .pods import stuck

PORT = 9000
MODELS, CONFIG = "/models", "/etc/lathe"
USER = 8888  # the serving image's user
DRAIN_SECONDS = 5  # preStop: how long a leaving pod still answers while the Service forgets it


def labels(md: ModelDeployment) -> dict[str, str]:
    return {**MANAGED_BY, "lathe.dev/model-deployment": md.name, "app.kubernetes.io/component": "serving"}


def config(
    md: ModelDeployment, traffic: list[tuple[int, int]], shadow: int | None, checksums: dict[int, str] | None = None
) -> str:
    """The server's deployment.json: versions in their fetched folders, the split, shadow, logging, and the
    sha256 each version's TrainingRun recorded (where one did)."""
    versions = sorted({v for v, _ in traffic} | ({shadow} if shadow else set()))
    recorded = {str(v): checksums[v] for v in versions if checksums and v in checksums}
    body = {
        "namespace": md.namespace,
        "deployment": md.name,
        "models": {str(v): f"{MODELS}/{v}" for v in versions},
        "traffic": {str(v): p for v, p in traffic},
        "shadow": shadow,
        "logging": {"sampleRate": md.spec.logging.sample_rate if md.spec.logging else 0.0},
        **({"checksums": recorded} if recorded else {}),
    }
    return json.dumps(body, sort_keys=True)


def _meta(md: ModelDeployment, kind: str) -> dict[str, Any]:
    return {
        "name": md.name if kind != "ConfigMap" else f"{md.name}-serving",
        "namespace": md.namespace,
        "labels": labels(md),
        "ownerReferences": [owner_reference(md)],
    }


def _env(store: StoreSettings, secret: str) -> list[dict[str, Any]]:
    plain = [{"name": k, "value": v} for k, v in sorted(store.env(keys=False).items())]
    keys = {variable: key for key, variable in SECRET_KEYS.items()}
    return plain + [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": keys[variable]}}}
        for variable in (ACCESS_KEY, SECRET_KEY)
    ]


def _restricted() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _resources(md: ModelDeployment) -> dict[str, Any]:
    wanted = {k: v for k, v in (("cpu", md.spec.resources.cpu), ("memory", md.spec.resources.memory)) if v}
    return {"requests": wanted, "limits": wanted} if wanted else {}


def deployment(md: ModelDeployment, settings: str, *, image: str, store: StoreSettings, secret: str) -> dict[str, Any]:
    body = json.loads(settings)
    versions = ",".join(sorted(body["models"], key=int))
    recorded = ",".join(f"{v}={h}" for v, h in sorted(body.get("checksums", {}).items()))
    env = _env(store, secret)
    volumes = [
        {"name": "models", "emptyDir": {}},
        {"name": "config", "configMap": {"name": f"{md.name}-serving"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    fetch = {
        "name": "fetch",
        "image": image,
        "command": ["python", "-m", "lathe_serving.fetch"],
        "args": [
            *("--namespace", md.namespace, "--model", md.spec.model.name, "--versions", versions, "--to", MODELS),
            *(("--sha256", recorded) if recorded else ()),
        ],
        "env": env,
        "volumeMounts": [{"name": "models", "mountPath": MODELS}],
        "securityContext": _restricted(),
        "terminationMessagePolicy": "FallbackToLogsOnError",  # why it failed, for the ModelDeployment's condition
    }
    server = {
        "name": "server",
        "image": image,
        "args": ["--config", f"{CONFIG}/deployment.json", "--port", str(PORT)],
        "env": [*env, {"name": "LATHE_NAMESPACE", "value": md.namespace}],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/health/ping", "port": PORT}, "periodSeconds": 2},
        # A pod leaving (a roll to a new split, a scale-in) keeps answering until kube-proxy and
        # the endpoints have forgotten it; then SIGTERM lets the server finish what it holds.
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS, "readOnly": True},
            {"name": "config", "mountPath": CONFIG, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "resources": _resources(md),
        "securityContext": _restricted(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    digest = hashlib.sha256(settings.encode()).hexdigest()[:16]
    # With autoscaling the HorizontalPodAutoscaler owns replicas: the manifest leaves them out
    # (the first create gets the API's default of 1, the HPA scales from there).
    replicas = {} if md.spec.autoscaling else {"replicas": md.spec.replicas if md.spec.replicas is not None else 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(md, "Deployment"),
        "spec": {
            **replicas,
            "selector": {"matchLabels": {"lathe.dev/model-deployment": md.name}},
            # A new split rolls the pods: every old one keeps serving until a new one is ready.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels(md),
                    "annotations": {
                        "lathe.dev/serving-config": digest,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                    },
                },
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "automountServiceAccountToken": False,
                    "initContainers": [fetch],
                    "containers": [server],
                    "volumes": volumes,
                },
            },
        },
    }


def manifests(
    md: ModelDeployment,
    traffic: list[tuple[int, int]],
    shadow: int | None,
    *,
    image: str,
    store: StoreSettings,
    secret: str,
    checksums: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """ConfigMap, Deployment and Service (and an HPA with autoscaling), in the order they are applied."""
    settings = config(md, traffic, shadow, checksums)
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(md, "ConfigMap"),
        "data": {"deployment.json": settings},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(md, "Service"),
        "spec": {
            "selector": {"lathe.dev/model-deployment": md.name},
            "ports": [{"name": "http", "port": PORT, "targetPort": PORT}],
        },
    }
    made = [config_map, deployment(md, settings, image=image, store=store, secret=secret), service]
    return made + ([autoscaler(md)] if md.spec.autoscaling else [])


def autoscaler(md: ModelDeployment) -> dict[str, Any]:
    """An autoscaling/v2 HPA on the server's in-flight requests per pod: the custom metric
    ``lathe_model_in_flight_requests``, served to the HPA by a custom metrics adapter (for
    example prometheus-adapter) from Prometheus' scrape of the pods."""
    scaling = md.spec.autoscaling
    assert scaling is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(md, "HorizontalPodAutoscaler"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": md.name},
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
        },
    }


def endpoint(md: ModelDeployment) -> str:
    return f"http://{md.name}.{md.namespace}.svc:{PORT}/api/v1.0/predictions"


def restarts(pods: list[dict[str, Any]]) -> str:
    """How often the servers of the pods restarted, and how the last one ended (an OOM kill, a crash)."""
    count, last = 0, {}
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            count += int(container.get("restartCount") or 0)
            ended = (container.get("lastState") or {}).get("terminated") or {}
            if ended and str(ended.get("finishedAt") or "") >= str(last.get("finishedAt") or ""):
                last = {**ended, "pod": (pod.get("metadata") or {}).get("name")}
    if not count:
        return ""
    how = f"{last.get('reason') or 'ended'} (exit code {last.get('exitCode')})" if last else "ended"
    return f"servers restarted {count} time{'s' if count > 1 else ''}, last {last.get('pod')}: {how} at {last.get('finishedAt')}"


def observe(
    found: dict[str, Any] | None, md: ModelDeployment, pods: list[dict[str, Any]] | None = None
) -> tuple[str, str, str | None]:
    """(state, message, endpoint) from the Deployment: Available once every wanted pod runs this template;
    Failed when a pod's container cannot run (crash loop, missing image) or the progress deadline passed."""
    if found is None:
        return "Absent", "Deployment not created yet", None
    spec, status = found.get("spec") or {}, found.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    current = (found.get("metadata") or {}).get("generation") == status.get("observedGeneration")
    updated, available = int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    if current and updated >= wanted and available >= wanted and total == updated:
        return "Available", f"Deployment {md.name}: {available} of {wanted} pods ready", endpoint(md)
    why = stuck(pods or [])
    if why is not None:
        return "Failed", f"Deployment {md.name}: {why}", endpoint(md)
    failing = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing" and c.get("status") == "False"),
        None,
    )
    if failing is not None:
        return "Failed", f"Deployment {md.name}: {failing.get('message', '')}", endpoint(md)
    return "Creating", f"Deployment {md.name}: {available} of {wanted} pods ready, {updated} updated", endpoint(md)

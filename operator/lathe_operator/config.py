"""Operator settings from the environment, set by the Helm chart or the local runner."""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Literal

from lathe_core.settings import StoreSettings

ENDPOINT = re.compile(r"^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$")  # as a Dataset's spec.source.endpoint


def cidrs(value: str) -> tuple[str, ...]:
    """``LATHE_CLUSTER_CIDRS``: comma-separated networks (IPv4 or IPv6), each checked here, at start-up."""
    found = []
    for entry in (e.strip() for e in value.split(",")):
        if entry:
            try:
                found.append(str(ipaddress.ip_network(entry, strict=False)))
            except ValueError as error:
                raise ValueError(
                    f"LATHE_CLUSTER_CIDRS entries must be networks such as 10.96.0.0/12: {error}"
                ) from error
    return tuple(found)


def source_endpoints(value: str) -> tuple[str, ...]:
    """``LATHE_SOURCE_ENDPOINTS``: comma-separated host:port entries, lower-cased; empty entries are ignored."""
    entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    for entry in entries:
        if not ENDPOINT.match(entry):
            raise ValueError(f"LATHE_SOURCE_ENDPOINTS entries must be host or host:port, not {entry!r}")
    return entries


@dataclass(frozen=True)
class Config:
    pipelines_image: str = "ghcr.io/lathe-dev/lathe-pipelines:0.1.0"  # KFP training steps (torch)
    jobs_image: str = "ghcr.io/lathe-dev/lathe-jobs:0.1.0"  # ingest, batch and edge Jobs (no torch)
    job_service_account: str = "lathe-jobs"
    job_deadline_seconds: int = 6 * 3600  # a run Job's activeDeadlineSeconds
    metrics_port: int = 9090
    executor: Literal["job", "local"] = "job"
    pipeline_backend: str = "kfp"  # default for TrainingRuns that do not name one: kfp or local
    code_revision: str = ""  # recorded in model cards; the image's git revision in a release build
    kfp_host: str = ""  # Kubeflow Pipelines API, e.g. http://ml-pipeline.kubeflow.svc:8888
    kfp_ui_url: str = ""  # where people open runs; the API host when empty
    kfp_token: str = ""
    serving: Literal["seldon", "kubernetes", "local"] = "seldon"  # SeldonDeployments, Deployments, local processes
    serving_image: str = "ghcr.io/lathe-dev/lathe-serving:0.1.0"
    serving_storage_secret: str = "lathe-seldon-storage"  # rclone-style keys for Seldon's storage initializer
    canary_metrics: Literal["lathe", "seldon"] = "lathe"  # lathe_model_* (Lathe's server) or Seldon's executor's
    prometheus_url: str = ""  # canary analysis queries it, e.g. http://prometheus-operated.monitoring.svc:9090
    request_logger_url: str = ""  # Seldon's request logger target (a Lathe log sink or any CloudEvents receiver)
    local_dir: str = ""  # local mode: model servers' folders; a fixed place so a restarted operator finds them
    # S3 endpoints a Dataset's source may name besides the store's own (reconcile.sources)
    source_endpoints: tuple[str, ...] = ()
    cluster_cidrs: tuple[str, ...] = ()  # the pod and Service CIDRs, which Dataset sources may never reach
    store: StoreSettings = StoreSettings()
    # shared: every namespace's store Secret is made by an administrator (one identity, the whole
    # bucket); namespace: the operator gives each namespace an identity confined to its own
    # prefixes through the store's IAM API, and writes that namespace's store Secret itself.
    store_isolation: Literal["shared", "namespace"] = "shared"
    store_iam_endpoint: str = ""  # the IAM API: the store's own URL when empty (SeaweedFS, Ceph RGW)
    store_iam_region: str = "us-east-1"  # what IAM requests are signed for: AWS IAM takes us-east-1 only

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        store = StoreSettings.from_env(env)
        executor = env.get("LATHE_EXECUTOR", "job")
        if executor not in ("job", "local"):
            raise ValueError(f"LATHE_EXECUTOR must be job or local, not {executor!r}")
        if executor == "local" and env.get("KUBERNETES_SERVICE_HOST"):
            raise ValueError(
                "LATHE_EXECUTOR=local is refused in a pod: local runs are processes of the operator, with its"
                " service account token and Secrets access, so any TrainingRun author's spec.trainer would run"
                " with them. It is for the local demo only; in a cluster use LATHE_EXECUTOR=job"
            )
        serving = env.get("LATHE_SERVING", "local" if executor == "local" else "seldon")
        if serving not in ("seldon", "kubernetes", "local"):
            raise ValueError(f"LATHE_SERVING must be seldon, kubernetes or local, not {serving!r}")
        isolation = env.get("LATHE_STORE_ISOLATION", "shared")
        if isolation not in ("shared", "namespace"):
            raise ValueError(f"LATHE_STORE_ISOLATION must be shared or namespace, not {isolation!r}")
        if isolation == "namespace" and (executor == "local" or store.local or serving == "local"):
            raise ValueError(
                "LATHE_STORE_ISOLATION=namespace needs LATHE_EXECUTOR=job, a serving backend other than local"
                " and an S3 store: local runs and model servers are processes of the operator, with its keys"
            )
        pipeline_backend = env.get("LATHE_PIPELINE_BACKEND", "local" if executor == "local" else "kfp")
        if isolation == "namespace" and (pipeline_backend == "kfp" or env.get("LATHE_KFP_HOST")):
            raise ValueError(
                "LATHE_STORE_ISOLATION=namespace needs LATHE_PIPELINE_BACKEND=job and no LATHE_KFP_HOST: KFP runs"
                " pipeline steps in its own namespace, where a TrainingRun's namespace keys are not"
            )
        scheme = "https" if store.secure else "http"
        return cls(
            pipelines_image=env.get("LATHE_PIPELINES_IMAGE", cls.pipelines_image),
            jobs_image=env.get("LATHE_JOBS_IMAGE", cls.jobs_image),
            job_service_account=env.get("LATHE_JOB_SERVICE_ACCOUNT", cls.job_service_account),
            job_deadline_seconds=int(env.get("LATHE_JOB_DEADLINE_SECONDS", cls.job_deadline_seconds)),
            metrics_port=int(env.get("LATHE_METRICS_PORT", cls.metrics_port)),
            executor=executor,  # type: ignore[arg-type]
            pipeline_backend=pipeline_backend,
            code_revision=env.get("LATHE_CODE_REVISION", ""),
            kfp_host=env.get("LATHE_KFP_HOST", ""),
            kfp_ui_url=env.get("LATHE_KFP_UI_URL", ""),
            kfp_token=env.get("LATHE_KFP_TOKEN", ""),
            serving=serving,  # type: ignore[arg-type]
            serving_image=env.get("LATHE_SERVING_IMAGE", cls.serving_image),
            serving_storage_secret=env.get("LATHE_SERVING_STORAGE_SECRET", cls.serving_storage_secret),
            prometheus_url=env.get("LATHE_PROMETHEUS_URL", ""),
            canary_metrics="seldon" if env.get("LATHE_CANARY_METRICS") == "seldon" else "lathe",
            request_logger_url=env.get("LATHE_REQUEST_LOGGER_URL", ""),
            local_dir=env.get("LATHE_LOCAL_DIR") or os.path.join(tempfile.gettempdir(), f"lathe-local-{os.getuid()}"),
            source_endpoints=source_endpoints(env.get("LATHE_SOURCE_ENDPOINTS", "")),
            cluster_cidrs=cidrs(env.get("LATHE_CLUSTER_CIDRS", "")),
            store=store,
            store_isolation=isolation,  # type: ignore[arg-type]
            store_iam_endpoint=env.get("LATHE_STORE_IAM_ENDPOINT") or f"{scheme}://{store.endpoint}",
            store_iam_region=env.get("LATHE_STORE_IAM_REGION") or cls.store_iam_region,
        )

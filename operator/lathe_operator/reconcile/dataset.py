"""Dataset reconciler: ensure the ingest Job for the current spec and report where it stands.

Ingest runs as a Kubernetes Job (the pipelines image's ``lathe ingest``) so that large data
never flows through the operator. The Job's name is derived from the Dataset and a hash of
its spec: a restarted operator finds the Job it created instead of creating another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api.v1alpha1 import Dataset
from . import conditions as cond
from .plan import MANAGED_BY, Event, Observed, Plan, owner_reference, transition_events

JOB_POLL_SECONDS = 10.0


def spec_hash(dataset: Dataset) -> str:
    """Short stable hash of the spec: a new spec gets a new ingest Job, the same one never does."""
    canonical = json.dumps(dataset.spec.dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def job_name(dataset: Dataset) -> str:
    return f"{dataset.name[:40]}-ingest-{spec_hash(dataset)}"


def ingest_job(dataset: Dataset, image: str, service_account: str) -> dict[str, Any]:
    """The batch/v1 Job that ingests, validates, versions and profiles the Dataset."""
    name = job_name(dataset)
    labels = {**MANAGED_BY, "lathe.dev/dataset": dataset.name, "app.kubernetes.io/component": "ingest"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": dataset.namespace,
            "labels": labels,
            "annotations": {"lathe.dev/spec-hash": spec_hash(dataset), "lathe.dev/generation": str(dataset.generation)},
            "ownerReferences": [owner_reference(dataset)],
        },
        "spec": {
            "backoffLimit": 3,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "ingest",
                            "image": image,
                            "args": ["lathe", "ingest", "--namespace", dataset.namespace, "--name", dataset.name],
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        }
                    ],
                },
            },
        },
    }


def _job_state(job: dict[str, Any] | None) -> str:
    if job is None:
        return "Absent"
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            return str(c["type"])
    return "Running"


def plan(dataset: Dataset, observed: Observed, *, image: str, service_account: str) -> Plan:
    """Level-based: the same Dataset and observations always give the same plan."""
    name = job_name(dataset)
    job = observed.child("Job", name)
    state = _job_state(job)
    create = [ingest_job(dataset, image, service_account)] if job is None else []
    if state == "Failed":
        verdict = dict(ready=False, progressing=False, degraded=True, reason="IngestFailed",
                       message=f"Ingest Job {name} failed; see its logs")
    elif state == "Complete":
        verdict = dict(ready=False, progressing=False, degraded=False, reason="IngestComplete",
                       message=f"Ingest Job {name} completed; no published version has been read yet")
    else:
        verdict = dict(ready=False, progressing=True, degraded=False, reason="IngestPending",
                       message=f"Waiting for ingest Job {name}")
    old = dataset.status.conditions
    new = cond.standard(old, generation=dataset.generation, now=observed.now, **verdict)
    status = dataset.status.model_copy(
        update={"conditions": new, "observed_generation": dataset.generation, "phase": cond.phase(new), "ingest_job": name}
    )
    events = transition_events(old, new)
    if create:
        events.insert(0, Event("Normal", "CreatedIngestJob", f"Created ingest Job {name}"))
    return Plan(
        status=status.dump(),
        create=create,
        events=events,
        requeue_after=JOB_POLL_SECONDS if state == "Running" or job is None else None,
    )


"""Runs: how one is asked for, how it stands, and the report it leaves in the store.

A run is one ``lathe`` command of the pipelines image (``RunRequest``): a Job in a
cluster, a child process locally. It ends by writing its report (``write_report``)
under the key ``layout`` names for its kind; the operator reads the report first and
asks the executor (a Job, a local process, a KFP run) only while there is none.
``RunState`` is what either answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from . import clock
from .store import InvalidObject, ObjectStore, ObjectTooLarge, get_json, put_json

Phase = Literal["Absent", "Running", "Failed", "Done"]


@dataclass(frozen=True)
class RunState:
    """Where a run stands: Done with its report, else what its executor says (Failed: ended without a report)."""

    phase: Phase
    report: dict[str, Any] | None = None
    message: str = ""
    run_id: str | None = None  # the backend's id, e.g. a KFP run id
    run_url: str | None = None  # where people open it, e.g. the Kubeflow UI
    progress: dict[str, Any] = field(default_factory=dict)  # e.g. rows scored so far


@dataclass(frozen=True)
class RunRequest:
    """One ``lathe <args>`` run, named deterministically so that asking twice starts it once."""

    namespace: str
    name: str
    component: str  # ingest, batch, edge: the Job's container and app.kubernetes.io/component
    args: tuple[str, ...]  # after ``lathe``
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # besides the store's, which every run gets
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)  # variable -> (Secret, key)
    source_file: tuple[str, str] | None = None  # (ConfigMap, key), handed over as ``--source-path``
    resources: dict[str, Any] | None = None  # container resources
    node_selector: dict[str, str] = field(default_factory=dict)  # e.g. a GPU node pool's label
    tolerations: list[dict[str, Any]] = field(default_factory=list)  # e.g. the GPU pool's taint
    owner: dict[str, Any] = field(default_factory=dict)  # the ownerReference of the object it runs for
    generation: int = 0  # of that object, recorded on the Job
    keep_seconds: int = 86400  # how long a finished Job stays for people to read
    # spec.trainer (training with the job backend): a container of its own in the Job's pod, in the team's image,
    # without the store's keys or the API token (lathe_core.handover); the GPUs in ``resources`` go to it
    trainer: dict[str, Any] | None = None


def write_report(store: ObjectStore, key: str, report: dict[str, Any]) -> None:
    """The run's outcome, stamped with ``finishedAt`` unless it carries one."""
    put_json(store, key, {"finishedAt": clock.stamp(), **report})


def read_report(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """The run's report; one past the size bound or not JSON (a tenant's code can write there) ends the run
    Failed with that reason instead of being read."""
    try:
        return get_json(store, key)
    except (ObjectTooLarge, InvalidObject) as error:
        return {"outcome": "Failed", "reason": error.reason, "message": f"the run's report was refused: {error}"}


def read_progress(store: ObjectStore, key: str) -> dict[str, Any]:
    """A running step's progress for people watching; one too large or not JSON is ignored ({})."""
    try:
        return get_json(store, key, limit=64 << 10) or {}
    except (ObjectTooLarge, InvalidObject):
        return {}

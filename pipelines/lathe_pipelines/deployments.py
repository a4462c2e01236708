"""Where batch and edge ModelDeployment runs report, in domain words (light: the operator imports it).

    deployments/<ns>/<deployment>/runs/<run>.json            # the outcome the operator reads
    deployments/<ns>/<deployment>/runs/<run>.progress.json   # rows scored so far (batch)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lathe_operator.backends.ports import ObjectStore

from .datasets import dumps


def report_key(namespace: str, deployment: str, run: str, suffix: str = "json") -> str:
    return f"deployments/{namespace}/{deployment}/runs/{run}.{suffix}"


def write_report(store: ObjectStore, namespace: str, deployment: str, run: str, report: dict[str, Any]) -> None:
    finished = datetime.now(UTC).replace(microsecond=0).isoformat()
    store.put(report_key(namespace, deployment, run), dumps({**report, "finishedAt": finished}))

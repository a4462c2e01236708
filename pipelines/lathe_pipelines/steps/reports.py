"""Run reports: each training run ends by writing its outcome to the store, whichever backend ran it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ..datasets import dumps
from .errors import TrainingFailed


def write(report_key: str, report: dict[str, Any]) -> None:
    if not report_key:
        return
    from lathe_operator.backends.stores import open_configured_store

    finished = datetime.now(UTC).replace(microsecond=0).isoformat()
    open_configured_store().put(report_key, dumps({**report, "finishedAt": finished}))


@contextlib.contextmanager
def failures(report_key: str, step: str) -> Iterator[None]:
    """Record a TrainingFailed (NaN loss, parity mismatch...) as the run's outcome, then fail the step."""
    try:
        yield
    except TrainingFailed as error:
        write(report_key, {"outcome": "Failed", "reason": error.reason, "message": f"{step}: {error}", "step": step})
        raise

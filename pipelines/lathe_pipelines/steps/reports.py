"""A training run's report, written by the step that decides it (the last one, or the one that fails)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from lathe_core.runs import write_report
from lathe_core.stores import open_configured_store

from .errors import TrainingFailed


def write(report_key: str, report: dict[str, Any]) -> None:
    """To the configured store; a step run on its own (no ``report_key``) writes nothing."""
    if report_key:
        write_report(open_configured_store(), report_key, report)


@contextlib.contextmanager
def failures(report_key: str, step: str) -> Iterator[None]:
    """Record a TrainingFailed (NaN loss, parity mismatch...) as the run's outcome, then fail the step."""
    try:
        yield
    except TrainingFailed as error:
        write(report_key, {"outcome": "Failed", "reason": error.reason, "message": f"{step}: {error}", "step": step})
        raise

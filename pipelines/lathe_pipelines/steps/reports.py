"""A training run's report, written by the step that decides it (the last one, or the one that fails)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from lathe_core import layout
from lathe_core.runs import write_report
from lathe_core.store import StoreError, put_json
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


def progress(report_key: str, every: float = 1.0) -> Callable[[dict[str, Any]], None]:
    """A callback for each epoch that tells the operator how far training has got (at most once per ``every`` s).

    Progress is for people watching: a store that cannot take it does not fail the run."""
    if not report_key:
        return lambda _: None
    store, last = open_configured_store(), [-math.inf]  # the first epoch always (monotonic may start near 0)

    def record(figures: dict[str, Any]) -> None:
        final = figures.get("epoch") == figures.get("epochs")
        if not final and time.monotonic() - last[0] < every:
            return
        last[0] = time.monotonic()
        with contextlib.suppress(StoreError):
            put_json(store, layout.progress_of(report_key), figures)

    return record

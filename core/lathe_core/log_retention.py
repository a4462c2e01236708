"""Retention of a deployment's request logs and feedback (``spec.logging.retention``): hour folders that ended
before the cut-off go, with every object in them.

The logs are ``logs/<namespace>/<deployment>/<yyyy-mm-dd>/<hh>/...`` (``layout.log_partition``): the days are
listed, a day wholly before the cut-off is deleted, and in the cut-off's own day the hours that ended before
it. Folders whose names are not dates or hours are left alone. Deleting twice is harmless, so a restarted
operator simply prunes again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from . import layout
from .store import ObjectStore


def _start(name: str, pattern: str) -> datetime | None:
    try:
        return datetime.strptime(name, pattern).replace(tzinfo=UTC)
    except ValueError:
        return None


def expired(store: ObjectStore, namespace: str, deployment: str, cutoff: datetime) -> list[str]:
    """The hour and day folders wholly before ``cutoff``."""
    found = []
    for day in store.folders(layout.logs_prefix(namespace, deployment)):
        start = _start(day.rstrip("/").rsplit("/", 1)[-1], "%Y-%m-%d")
        if start is None or start >= cutoff:
            continue
        if start + timedelta(days=1) <= cutoff:
            found.append(day)
            continue
        for hour in store.folders(day):
            begun = _start(day.rstrip("/").rsplit("/", 1)[-1] + hour.rstrip("/").rsplit("/", 1)[-1], "%Y-%m-%d%H")
            if begun is not None and begun + timedelta(hours=1) <= cutoff:
                found.append(hour)
    return found


def prune(store: ObjectStore, namespace: str, deployment: str, keep: timedelta, now: datetime) -> int:
    """Delete what is older than ``keep`` before ``now``; returns the number of objects deleted."""
    deleted = 0
    for folder in expired(store, namespace, deployment, now - keep):
        for key in store.list(folder):
            store.delete(key)
            deleted += 1
    return deleted

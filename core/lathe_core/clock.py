"""The time Lathe records: UTC, whole seconds (what status fields and reports carry)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stamp() -> str:
    """``now()`` as ISO 8601 text, as run reports and manifests write it."""
    return now().isoformat()

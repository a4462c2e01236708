"""Request logs past a deployment's retention go by hour folder; what is newer, and what is not a log folder, stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lathe_core import layout, log_retention
from lathe_core.store_local import LocalStore

NOW = datetime(2026, 12, 8, 10, 30, tzinfo=UTC)


def test_folders_wholly_before_the_cutoff_are_deleted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for hours_ago in (0, 1, 2, 3, 30, 80):
        when = NOW - timedelta(hours=hours_ago)
        store.put(layout.log_object(layout.log_partition("ml", "web", when), 1, 2, 3), b"x")
    store.put("logs/ml/web/notes/readme.txt", b"kept")  # not a day: never touched
    store.put(layout.log_object(layout.log_partition("ml", "other", NOW - timedelta(days=9)), 1, 2, 3), b"x")
    deleted = log_retention.prune(store, "ml", "web", timedelta(hours=2), NOW)
    # the cutoff is 08:30: the 08:00 hour ends after it and stays; 07:30's, yesterday's and older go
    assert deleted == 3
    left = store.list("logs/ml/web/")
    assert left == sorted(
        [layout.log_object(layout.log_partition("ml", "web", NOW - timedelta(hours=h)), 1, 2, 3) for h in (0, 1, 2)]
        + ["logs/ml/web/notes/readme.txt"]
    )
    assert store.list("logs/ml/other/")  # another deployment's logs are its own
    assert log_retention.prune(store, "ml", "web", timedelta(hours=2), NOW) == 0  # twice is harmless

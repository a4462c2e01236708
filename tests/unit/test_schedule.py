"""Durations and cron schedules for refresh slots."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lathe_operator.reconcile import schedule

NOW = datetime(2026, 3, 4, 10, 17, 30, tzinfo=UTC)  # a Wednesday


def test_seconds() -> None:
    assert schedule.seconds("1h30m") == 5400 and schedule.seconds("500ms") == 0.5
    with pytest.raises(ValueError):
        schedule.seconds("5 minutes")


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("*/15 * * * *", datetime(2026, 3, 4, 10, 15, tzinfo=UTC)),
        ("0 * * * *", datetime(2026, 3, 4, 10, 0, tzinfo=UTC)),
        ("30 2 * * *", datetime(2026, 3, 4, 2, 30, tzinfo=UTC)),
        ("0 9 * * 1", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        ("0 0 1 * *", datetime(2026, 3, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_previous_cron(cron: str, expected: datetime) -> None:
    assert schedule.previous_cron(cron, NOW) == expected


def test_slot_is_stable_within_a_period() -> None:
    assert schedule.slot(NOW) == 0
    assert schedule.slot(NOW, interval="1h") == schedule.slot(NOW.replace(minute=59), interval="1h")
    assert schedule.slot(NOW, cron="0 * * * *") == schedule.slot(NOW.replace(minute=59), cron="0 * * * *")

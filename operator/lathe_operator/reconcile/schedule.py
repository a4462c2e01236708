"""Durations ("1h30m") and five-field cron schedules, for refresh slots and back-off.

A refresh *slot* is the start of the current period: the same moment gives the same
slot, so a restarted operator computes the same run name and starts nothing twice.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))  # minute hour day-of-month month day-of-week
MAX_LOOKBACK = timedelta(days=366)


def seconds(duration: str) -> float:
    """'1h30m' -> 5400.0"""
    parts = re.findall(r"([0-9]+)(ms|s|m|h|d)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"invalid duration {duration!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, stop = low, high
        elif "-" in body:
            start, stop = (int(x) for x in body.split("-", 1))
        else:
            start = stop = int(body)
        if not (low <= start <= stop <= high + (1 if high == 6 else 0)) or step < 1:
            raise ValueError(f"cron field {text!r} out of range {low}-{high}")
        values.update(v % 7 if high == 6 else v for v in range(start, stop + 1, step))
    return values


@functools.lru_cache(maxsize=256)  # one plan asks up to three times (problem, slot, next refresh) at one moment
def previous_cron(expression: str, now: datetime) -> datetime:
    """The latest time at or before ``now`` that the cron expression fires (minute resolution)."""
    minute, hour, dom, month, dow = (_field(t, lo, hi) for t, (lo, hi) in zip(expression.split(), _FIELDS, strict=True))
    any_dom, any_dow = expression.split()[2] == "*", expression.split()[4] == "*"
    moment = now.replace(second=0, microsecond=0)
    stop = moment - MAX_LOOKBACK
    while moment > stop:
        day_ok = (
            (moment.day in dom)
            if any_dow
            else (moment.isoweekday() % 7 in dow)
            if any_dom
            else (moment.day in dom or moment.isoweekday() % 7 in dow)
        )
        if moment.month in month and day_ok:
            if moment.hour in hour and moment.minute in minute:
                return moment
            moment -= timedelta(minutes=1)
        else:  # skip the rest of a day that cannot match
            moment = moment.replace(hour=0, minute=0) - timedelta(minutes=1)
    raise ValueError(f"cron {expression!r} does not fire within a year")


def problem(now: datetime, interval: str | None = None, cron: str | None = None) -> str | None:
    """Why a schedule cannot be used (an interval under a second, a cron that names no real time), else None.

    The CRD refuses most of these; this catches what a pattern cannot (5-3, February 30th)."""
    try:
        if interval and seconds(interval) < 1:
            return f"interval {interval!r} is shorter than a second"
        if cron:
            previous_cron(cron, now)
    except ValueError as error:
        return str(error)
    return None


def slot(now: datetime, interval: str | None = None, cron: str | None = None) -> int:
    """Index of the current refresh period: 0 without a schedule, else its start in epoch minutes/periods."""
    if interval:
        return int(now.timestamp() // seconds(interval))
    if cron:
        return int(previous_cron(cron, now).timestamp() // 60)
    return 0

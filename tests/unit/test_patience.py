"""A workload rides out a short store outage: retried with back-off until its patience runs out."""

from __future__ import annotations

import pytest

from lathe_core.patience import patiently
from lathe_core.store import StoreAccessDenied, StoreUnavailable


def test_unavailable_is_retried_with_back_off_and_other_errors_are_not() -> None:
    slept: list[float] = []
    calls = iter([StoreUnavailable("down"), StoreUnavailable("down"), StoreUnavailable("down"), "done"])

    def call() -> str:
        found = next(calls)
        if isinstance(found, Exception):
            raise found
        return found

    assert patiently(call, "register", seconds=60, sleep=slept.append) == "done" and slept == [1.0, 2.0, 4.0]

    def denied() -> None:
        raise StoreAccessDenied("no")

    with pytest.raises(StoreAccessDenied):
        patiently(denied, "register", seconds=60, sleep=slept.append)


def test_patience_runs_out() -> None:
    def down() -> None:
        raise StoreUnavailable("down")

    with pytest.raises(StoreUnavailable):
        patiently(down, "register", seconds=0.5, sleep=lambda _: None)

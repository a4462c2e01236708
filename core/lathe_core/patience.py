"""Riding out a short store outage inside a workload: retry what the store refused as unavailable.

A training run that spent an hour on a GPU should not be lost to a store that restarts for
thirty seconds just as it registers. ``patiently`` retries a call that raised
``StoreUnavailable`` with back-off (1 s doubling to 15 s) until ``LATHE_STORE_PATIENCE``
seconds (default 120) have passed, saying on stderr that it waits. Only for steps whose call is
safe to repeat (registration is idempotent per run id; reports overwrite themselves); the
operator itself never waits here, it records the outage as a condition and looks again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TypeVar

from .store import StoreUnavailable

T = TypeVar("T")
PATIENCE_ENV = "LATHE_STORE_PATIENCE"
log = logging.getLogger("lathe")


def patiently(
    call: Callable[[], T], what: str, seconds: float | None = None, sleep: Callable[[float], None] = time.sleep
) -> T:
    budget = float(os.environ.get(PATIENCE_ENV, "120")) if seconds is None else seconds
    deadline, wait = time.monotonic() + budget, 1.0
    while True:
        try:
            return call()
        except StoreUnavailable as error:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("Waiting for the store to %s (%s); next try in %.0f s", what, error, wait)
            sleep(wait)
            wait = min(wait * 2, 15.0)

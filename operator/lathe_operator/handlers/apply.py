"""Apply a reconciler's Plan through kopf: Events, status, and when the object is looked at next.

``Looks`` honours ``Plan.requeue_after``, as controller-runtime honours ``RequeueAfter``:
each object's timer sleeps until its time has come, then reconciles it. An object the
operator has not seen since it started is due at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from lathe_core.clock import now

from ..api.v1alpha1 import Resource
from ..reconcile import conditions as cond
from ..reconcile.plan import Plan

TICK = 1.0  # seconds between a timer's turns (each sleeps until its object is due)
LONGEST = 60.0  # the longest a turn sleeps: an object nothing asked about is looked at once a minute
UNAVAILABLE_RETRY = 15.0

RECONCILES = Counter("lathe_reconcile_total", "Reconciliations by kind and result", ["kind", "result"])
DURATION = Histogram("lathe_reconcile_duration_seconds", "Time spent in one reconciliation", ["kind"])

__all__ = ["Looks", "apply", "exclusive", "forget", "now", "parse", "poll", "reconciler", "unavailable"]


class Looks:
    """When each object wants its next reconcile; thread-safe (kopf runs sync handlers in threads).

    Each object's timer waits in ``until_due`` on the event loop, costing nothing while it
    sleeps; ``after`` from any thread wakes it to look at the new time."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._wakers: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def after(self, uid: str, seconds: float | None) -> None:
        """Look again in ``seconds``; None: only when the object changes."""
        with self._lock:
            self._due[uid] = math.inf if seconds is None else time.monotonic() + seconds
            wake = self._wakers.get(uid)
        if wake is not None:
            wake()

    def due(self, uid: str) -> bool:
        return self._left(uid) <= 0

    def _left(self, uid: str) -> float:
        with self._lock:
            return self._due.get(uid, 0.0) - time.monotonic()

    def forget(self, uid: str) -> None:
        """The object is gone. Its timer is not woken: kopf stops it, and woken it would find the object due."""
        with self._lock:
            self._due.pop(uid, None)

    async def until_due(self, uid: str, stopped: Any, longest: float) -> None:
        """Sleep until the object is due, its timer is ``stopped`` (kopf's flag) or ``longest`` s have passed."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the operator is exiting
                loop.call_soon_threadsafe(changed.set)

        with self._lock:
            self._wakers[uid] = wake
        stop = asyncio.ensure_future(stopped.wait())
        end = time.monotonic() + longest
        try:
            while not stopped:
                changed.clear()  # before reading the time: an ``after`` from now on wakes the wait below
                left = min(self._left(uid), end - time.monotonic())
                if left <= 0:
                    return
                nudged = asyncio.ensure_future(changed.wait())
                await asyncio.wait({nudged, stop}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                nudged.cancel()
        finally:
            stop.cancel()
            with self._lock:
                if self._wakers.get(uid) is wake:
                    del self._wakers[uid]


def exclusive(memo: kopf.Memo, uid: str) -> threading.RLock:
    """One reconcile of an object at a time: kopf runs its timer beside its change handlers, in threads.

    Reentrant, so a timer that holds it may call the kind's reconcile, which takes it too."""
    with memo.locks_guard:
        return memo.locks.setdefault(uid, threading.RLock())


def forget(memo: kopf.Memo, uid: str) -> None:
    memo.looks.forget(uid)
    with memo.locks_guard:
        memo.locks.pop(uid, None)


async def poll(
    reconcile: Callable[..., None],
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: logging.Logger,
    stopped: Any,
) -> None:
    """A timer's turn: sleep on the event loop until the object's time has come (at most ``LONGEST``
    seconds), then reconcile in a worker thread, checked again under the object's lock (a change
    handler or kopf's retry of one may have just done it).

    A thousand settled objects cost nothing between their turns; a kopf timer that ticked every
    second for each would cost a core."""
    uid = body.metadata.uid
    await memo.looks.until_due(uid, stopped, LONGEST)
    if not stopped and memo.looks.due(uid):
        await asyncio.to_thread(_poll, memo, uid, lambda: reconcile(body=body, patch=patch, memo=memo, logger=logger))


def _poll(memo: kopf.Memo, uid: str, reconcile: Callable[[], None]) -> None:
    with exclusive(memo, uid):
        if memo.looks.due(uid):
            reconcile()


def parse(model: type[Resource], body: kopf.Body) -> Any:
    """The typed object; a spec the models reject (only possible without the CRD) fails for good."""
    try:
        return model.model_validate(dict(body))
    except ValidationError as error:
        raise kopf.PermanentError(f"Invalid {model.kind_name}: {error}") from error


def unavailable(resource: Any, error: Exception, patch: kopf.Patch, looks: Looks) -> kopf.TemporaryError:
    """Record that a backend (object store, KFP API) is unreachable; the caller raises the retry this returns."""
    reason = str(getattr(error, "reason", type(error).__name__))
    conditions = cond.standard(
        resource.status.conditions,
        cond.failed(reason, str(error), retrying=True),
        generation=resource.generation,
        now=now(),
    )
    patch.status.update(conditions=[c.dump() for c in conditions], phase=cond.phase(conditions).value)
    looks.after(resource.uid, UNAVAILABLE_RETRY)
    return kopf.TemporaryError(str(error), delay=UNAVAILABLE_RETRY)


def apply(plan: Plan, body: kopf.Body, patch: kopf.Patch, looks: Looks) -> None:
    for event in plan.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    patch.status.update(plan.status)
    looks.after(body.metadata.uid, plan.requeue_after)


def reconciler(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Metrics, and API conflicts turned into a retry, for every handler of one kind."""

    def decorate(handler: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            started = time.monotonic()
            try:
                handler(*args, **kwargs)
            except ApiException as error:
                RECONCILES.labels(kind, "error").inc()
                if error.status in (409, 429) or error.status >= 500:
                    raise kopf.TemporaryError(f"Kubernetes API said {error.status}: {error.reason}", delay=5) from error
                raise
            except Exception:
                RECONCILES.labels(kind, "error").inc()
                raise
            else:
                RECONCILES.labels(kind, "ok").inc()
            finally:
                DURATION.labels(kind).observe(time.monotonic() - started)

        return wrapper

    return decorate

"""Apply a reconciler's Plan through the backends and kopf: children, Events, status."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from ..api.v1alpha1 import Resource
from ..backends.ports import Kube
from ..reconcile import conditions as cond
from ..reconcile.plan import Observed, Plan

RECONCILES = Counter("lathe_reconcile_total", "Reconciliations by kind and result", ["kind", "result"])
DURATION = Histogram("lathe_reconcile_duration_seconds", "Time spent in one reconciliation", ["kind"])


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse(model: type[Resource], body: kopf.Body) -> Any:
    """The typed object; a spec the models reject (only possible without the CRD) fails for good."""
    try:
        return model.model_validate(dict(body))
    except ValidationError as error:
        raise kopf.PermanentError(f"Invalid {model.kind_name}: {error}") from error


def observe_children(kube: Kube, namespace: str, wanted: list[tuple[str, str, str]]) -> Observed:
    """Observed state with the named children (apiVersion, kind, name) that exist."""
    children = {}
    for api_version, kind, name in wanted:
        found = kube.get(api_version, kind, namespace, name)
        if found is not None:
            children[(kind, name)] = found
    return Observed(now=now(), children=children)


def unavailable(resource: Any, reason: str, message: str, patch: kopf.Patch) -> None:
    """Record that a backend (object store, KFP API) is unreachable; the caller retries with back-off."""
    conditions = cond.standard(resource.status.conditions, ready=False, progressing=True, degraded=True,
                               reason=reason, message=message[:1000], generation=resource.generation, now=now())
    patch.status.update(conditions=[c.dump() for c in conditions], phase=cond.phase(conditions).value)


def apply(plan: Plan, body: kopf.Body, patch: kopf.Patch, kube: Kube, logger: logging.Logger) -> None:
    for manifest in plan.create:
        if kube.ensure(manifest):
            logger.info("Created %s %s", manifest["kind"], manifest["metadata"]["name"])
    for event in plan.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    patch.status.update(plan.status)


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

"""kopf handlers for DriftMonitor, whose backend arrives in a later release.

It still follows every convention (observedGeneration, conditions, Events) and says
Ready=False with reason NotImplemented, never a fake success.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.v1alpha1 import GROUP, VERSION, DriftMonitor
from ..reconcile import unsupported
from ..reconcile.plan import Observed
from .apply import apply, now, parse, reconciler

PLURAL = DriftMonitor.plural


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("DriftMonitor")
def reconcile_drift_monitor(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    apply(unsupported.plan(parse(DriftMonitor, body), Observed(now=now())), body, patch, memo.looks)

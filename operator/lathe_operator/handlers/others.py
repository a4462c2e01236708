"""kopf handlers for the kinds whose backends arrive in later releases.

They still follow every convention (observedGeneration, conditions, Events) and say
Ready=False with reason NotImplemented, never a fake success.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.v1alpha1 import GROUP, VERSION, DriftMonitor, Resource
from ..reconcile import unsupported
from .apply import apply, now, parse, reconciler
from ..reconcile.plan import Observed


def register(model: type[Resource]) -> None:
    @kopf.on.create(GROUP, VERSION, model.plural, id=f"reconcile_{model.plural}")
    @kopf.on.update(GROUP, VERSION, model.plural, field="spec", id=f"reconcile_{model.plural}")
    @kopf.on.resume(GROUP, VERSION, model.plural, id=f"reconcile_{model.plural}")
    @reconciler(model.kind_name)
    def reconcile_(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
        resource = parse(model, body)
        apply(unsupported.plan(resource, Observed(now=now())), body, patch, memo.kube, logger)


for _model in (DriftMonitor,):
    register(_model)

"""Failpoints: named places in the reconcilers' side effects where a fault test kills the operator.

    LATHE_FAILPOINTS=training-run.submitted,dataset.ingest-started lathe operator ...

The operator SIGKILLs itself when it passes an armed point, after the side effect and before its status
is written: the window a crash or an eviction can hit. ``tests/faults`` restarts it without the variable
and checks that nothing ran twice. Unset (always, outside those tests) a point costs one set lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset(
    {
        "dataset.ingest-started",
        "dataset.versions-deleted",
        "training-run.submitted",
        "model-deployment.served",
        "model-deployment.promoted",
        "model-deployment.run-started",
        "drift-monitor.check-started",
        "drift-monitor.retrain-stepped",
    }
)
ARMED = frozenset(p.strip() for p in os.environ.get("LATHE_FAILPOINTS", "").split(",") if p.strip())
if ARMED - POINTS:
    raise SystemExit(f"LATHE_FAILPOINTS names unknown points: {sorted(ARMED - POINTS)}; known: {sorted(POINTS)}")


def hit(point: str) -> None:
    assert point in POINTS, point
    if point in ARMED:
        os.kill(os.getpid(), signal.SIGKILL)

"""The operator's drift gauges: each DriftMonitor's last check, for Prometheus to scrape and alert on.

Label sets are tracked per monitor, so a column that leaves the data (or a deleted
monitor) leaves the exposition too instead of repeating its last value forever.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

VERDICTS = ("NoDrift", "Drift", "InsufficientData")


class DriftGauges:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        scope = ["namespace", "monitor"]
        self.score = Gauge(
            "lathe_drift_score",
            "Test statistic of a column in the last drift check",
            [*scope, "column", "test"],
            registry=registry,
        )
        self.column = Gauge(
            "lathe_drift_column_drifted",
            "1 when the column drifted in the last check",
            [*scope, "column"],
            registry=registry,
        )
        self.share = Gauge("lathe_drift_share", "Share of drifted columns in the last check", scope, registry=registry)
        self.detected = Gauge(
            "lathe_drift_detected", "1 when the last check found dataset drift", scope, registry=registry
        )
        self.verdict = Gauge(
            "lathe_drift_verdict", "1 for the last check's verdict", [*scope, "verdict"], registry=registry
        )
        self.prediction = Gauge(
            "lathe_drift_prediction_drifted", "1 when the model's predictions drifted", scope, registry=registry
        )
        self.accuracy = Gauge(
            "lathe_drift_live_accuracy", "Accuracy on labelled logged predictions", scope, registry=registry
        )
        self.accuracy_min = Gauge(
            "lathe_drift_live_accuracy_min", "The monitor's spec.accuracy.min", scope, registry=registry
        )
        self.labelled = Gauge(
            "lathe_drift_labelled_samples", "Labelled samples in the last check's window", scope, registry=registry
        )
        self.samples = Gauge(
            "lathe_drift_samples", "Current samples in the last check's window", scope, registry=registry
        )
        self.last = Gauge(
            "lathe_drift_last_check_timestamp_seconds", "When the last check finished", scope, registry=registry
        )
        self.interval = Gauge("lathe_drift_interval_seconds", "The monitor's spec.interval", scope, registry=registry)
        self.failed = Gauge(
            "lathe_drift_check_failed",
            "1 while the monitor's last check failed (its reason in status)",
            scope,
            registry=registry,
        )
        self._labels: dict[tuple[str, str], list[tuple[Gauge, tuple[str, ...]]]] = {}
        self._lock = threading.Lock()

    def export(
        self, namespace: str, monitor: str, report: dict[str, Any], interval: float, accuracy_min: float | None
    ) -> None:
        """Replace the monitor's series with the report's figures. A failed check keeps the last good ones,
        so a drift alert does not resolve and the stale-check alert can fire, and sets check_failed."""
        with self._lock:
            self.failed.labels(namespace, monitor).set(0 if report.get("outcome") == "Succeeded" else 1)
            if report.get("outcome") != "Succeeded":
                return
            scope = (namespace, monitor)
            sets: list[tuple[Gauge, tuple[str, ...]]] = []

            def put(gauge: Gauge, value: float | None, *extra: str) -> None:
                if value is not None:
                    gauge.labels(*scope, *extra).set(float(value))
                    sets.append((gauge, (*scope, *extra)))

            for c in exported_columns(report):
                put(self.score, c.get("statistic"), label(c["name"]), label(c.get("test") or ""))
                put(self.column, int(bool(c.get("drifted"))), label(c["name"]))
            for verdict in VERDICTS:
                put(self.verdict, int(report.get("verdict") == verdict), verdict)
            prediction = report.get("prediction")
            put(self.share, report.get("driftShare"))
            put(self.detected, int(report.get("verdict") == "Drift"))
            put(self.prediction, int(bool(prediction["drifted"])) if prediction else None)
            put(self.accuracy, report.get("liveAccuracy"))
            put(self.accuracy_min, accuracy_min)
            put(self.labelled, report.get("labelled"))
            put(self.samples, report.get("samples"))
            finished = report.get("finishedAt")
            put(self.last, datetime.fromisoformat(finished).timestamp() if finished else None)
            put(self.interval, interval)
            # Stale series go after the new ones are set: a scrape in between sees every series, never a gap
            # (a gap reads as a staleness marker, and a query right after it finds nothing).
            kept = set((id(g), labels) for g, labels in sets)
            for gauge, labels in self._labels.get(scope, []):
                if (id(gauge), labels) not in kept:
                    self._remove(gauge, labels)
            self._labels[scope] = sets

    def forget(self, namespace: str, monitor: str) -> None:
        with self._lock:
            self._forget(namespace, monitor)
            try:
                self.failed.remove(namespace, monitor)
            except KeyError:
                pass

    def _forget(self, namespace: str, monitor: str) -> None:
        for gauge, labels in self._labels.pop((namespace, monitor), []):
            self._remove(gauge, labels)

    @staticmethod
    def _remove(gauge: Gauge, labels: tuple[str, ...]) -> None:
        try:
            gauge.remove(*labels)
        except KeyError:
            pass


MAX_COLUMN_SERIES = 200  # per monitor: a report is written where a tenant can write, so its columns are bounded
MAX_LABEL = 128  # characters of a label value taken from a report


def label(value: Any) -> str:
    return str(value)[:MAX_LABEL]


def exported_columns(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The checked columns whose series are exported: drifted ones first, then the others in the report's order,
    at most ``MAX_COLUMN_SERIES`` (status and the report keep every column; lathe_drift_share counts them all)."""
    columns = report.get("columns")
    checked = [
        c
        for c in (columns if isinstance(columns, list) else [])
        if isinstance(c, dict) and c.get("status") == "Checked" and isinstance(c.get("name"), str)
    ]
    ordered = [c for c in checked if c.get("drifted")] + [c for c in checked if not c.get("drifted")]
    return ordered[:MAX_COLUMN_SERIES]

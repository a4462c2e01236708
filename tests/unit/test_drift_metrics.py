"""The operator's drift gauges: replaced per check, kept through a failed one, gone with the monitor."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from lathe_operator.backends.drift_metrics import DriftGauges

GOOD = {
    "outcome": "Succeeded",
    "verdict": "Drift",
    "driftShare": 0.5,
    "samples": 900,
    "labelled": 100,
    "liveAccuracy": 0.8,
    "finishedAt": "2026-11-26T12:00:00+00:00",
    "prediction": {"drifted": True},
    "columns": [
        {"name": "a", "status": "Checked", "test": "wasserstein", "statistic": 0.4, "drifted": True},
        {"name": "b", "status": "MissingInCurrent", "test": "wasserstein", "statistic": None},
    ],
}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"namespace": "ml", "monitor": "m", **labels})


def test_a_failed_check_keeps_the_last_figures_and_says_it_failed() -> None:
    registry = CollectorRegistry()
    gauges = DriftGauges(registry)
    gauges.export("ml", "m", GOOD, 300, 0.9)
    assert (
        value(registry, "lathe_drift_detected") == 1
        and value(registry, "lathe_drift_score", column="a", test="wasserstein") == 0.4
    )
    assert value(registry, "lathe_drift_score", column="b", test="wasserstein") is None  # not checked: no series
    gauges.export("ml", "m", {"outcome": "Failed", "reason": "ReferenceMissing"}, 300, 0.9)
    assert value(registry, "lathe_drift_detected") == 1 and value(registry, "lathe_drift_check_failed") == 1
    assert value(registry, "lathe_drift_last_check_timestamp_seconds") == 1795694400.0  # a stale alert can fire
    gauges.export("ml", "m", {**GOOD, "columns": [], "verdict": "NoDrift"}, 300, 0.9)
    assert value(registry, "lathe_drift_score", column="a", test="wasserstein") is None  # the column left
    assert value(registry, "lathe_drift_check_failed") == 0 and value(registry, "lathe_drift_detected") == 0
    gauges.forget("ml", "m")
    assert value(registry, "lathe_drift_share") is None and value(registry, "lathe_drift_check_failed") is None


def test_a_scrape_in_the_middle_of_an_export_sees_every_series() -> None:
    """Prometheus scrapes without the exporter's lock: a series missing for one scrape is marked stale,
    and a query right after it finds nothing (a CI run failed on exactly that)."""
    registry = CollectorRegistry()
    gauges = DriftGauges(registry)
    gauges.export("ml", "m", GOOD, 300, 0.9)
    seen: list[dict[str, float | None]] = []
    labels = gauges.accuracy.labels

    def scrape_then_label(*args: str):  # type: ignore[no-untyped-def]
        seen.append(
            {
                "score": value(registry, "lathe_drift_score", column="a", test="wasserstein"),
                "accuracy": value(registry, "lathe_drift_live_accuracy"),
                "samples": value(registry, "lathe_drift_samples"),
            }
        )
        return labels(*args)

    gauges.accuracy.labels = scrape_then_label  # type: ignore[method-assign]
    gauges.export("ml", "m", {**GOOD, "liveAccuracy": 0.7}, 300, 0.9)
    assert seen == [{"score": 0.4, "accuracy": 0.8, "samples": 900}]
    assert value(registry, "lathe_drift_live_accuracy") == 0.7

"""The canary's Prometheus queries against a real Prometheus, for both metric families.

Seldon's executor cannot run here, so a stand-in exposes the metric names and labels it
documents (``seldon_api_executor_server_requests_seconds`` with ``deployment_name``,
``predictor_name``, ``code``; ``seldon_api_model_feedback_total`` and
``..._reward_total``), with the namespace label a Kubernetes scrape adds.
"""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from lathe_operator.backends.prometheus import MetricsUnavailable, PrometheusMetrics
from tests.conftest import eventually
from tests.servers.process import free_port
from tests.servers.prometheus import Prometheus


def test_seldon_family_gives_requests_error_rate_latency_and_accuracy(prometheus: Prometheus) -> None:
    registry = CollectorRegistry()
    labels = ["namespace", "deployment_name", "predictor_name", "code", "method", "service"]
    seconds = Histogram(
        "seldon_api_executor_server_requests_seconds",
        "Seldon executor requests",
        labels,
        registry=registry,
        buckets=(0.005, 0.01, 0.05, 0.1, 0.5),
    )
    feedback = Counter("seldon_api_model_feedback", "Feedback", labels[:3], registry=registry)
    reward = Counter("seldon_api_model_feedback_reward", "Feedback reward", labels[:3], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prometheus.scrape([f"127.0.0.1:{port}"])
        eventually(lambda: prometheus.query(f'up{{instance="127.0.0.1:{port}"}} == 1'), timeout=30)
        source = PrometheusMetrics(prometheus.url, "seldon")
        for _ in range(24):  # a steady stream across several scrapes: v2 fails 10%, answers in 30-40 ms
            for code, count in (("200", 9), ("500", 1)):
                for _ in range(count):
                    seconds.labels("ml", "digits", "v2", code, "POST", "predictions").observe(0.03)
            seconds.labels("ml", "digits", "v1", "200", "POST", "predictions").observe(0.004)
            feedback.labels("ml", "digits", "v2").inc(4)
            reward.labels("ml", "digits", "v2").inc(3)
            time.sleep(0.25)

        def measured() -> dict[str, float | None]:
            found = source.version("ml", "digits", 2, "30s")
            assert found["requests"] and found["requests"] > 50 and found["accuracy"] is not None
            return found

        candidate = eventually(measured, timeout=60)
        assert abs(candidate["error_rate"] - 0.1) < 0.02  # type: ignore[operator]
        assert 10 < candidate["p99_ms"] <= 50  # type: ignore[operator]
        assert abs(candidate["accuracy"] - 0.75) < 0.02  # type: ignore[operator]
        stable = source.version("ml", "digits", 1, "30s")
        assert stable["error_rate"] == 0 and stable["p99_ms"] is not None and stable["p99_ms"] <= 5
        assert source.version("ml", "other", 1, "30s") == {
            "requests": 0.0,
            "error_rate": None,
            "p99_ms": None,
            "accuracy": None,
        }
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_unreachable_prometheus_is_reported_not_guessed() -> None:
    source = PrometheusMetrics(f"http://127.0.0.1:{free_port()}", "lathe", timeout=2)
    with pytest.raises(MetricsUnavailable, match="did not answer"):
        source.version("ml", "digits", 1, "1m")

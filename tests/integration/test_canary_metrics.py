"""The canary's Prometheus queries against a real Prometheus, for both metric families (Lathe's from a real
model server: a regressor's mean absolute error from feedback).

Seldon's executor cannot run here, so a stand-in exposes the metric names and labels it
documents (``seldon_api_executor_server_requests_seconds`` with ``deployment_name``,
``predictor_name``, ``code``; ``seldon_api_model_feedback_total`` and
``..._reward_total``), with the namespace label a Kubernetes scrape adds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from lathe_operator.backends.prometheus import MetricsUnavailable, PrometheusMetrics
from lathe_pipelines.sample_data import diabetes
from lathe_pipelines.steps.classifier import train
from lathe_pipelines.steps.export import export
from lathe_pipelines.steps.split import split
from tests.conftest import eventually
from tests.integration.test_model_server import call
from tests.servers.model_server import model_server
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
            "mae": None,
        }
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_unreachable_prometheus_is_reported_not_guessed() -> None:
    source = PrometheusMetrics(f"http://127.0.0.1:{free_port()}", "lathe", timeout=2)
    with pytest.raises(MetricsUnavailable, match="did not answer"):
        source.version("ml", "digits", 1, "1m")


@pytest.fixture
def regressor(tmp_path: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Lathe's model server over a small PyTorch regressor of the diabetes data: (url, rows, their truth)."""
    frame = diabetes()
    parts = split(frame, "progression", 3, task="regression")
    trained = train(
        parts.x_train, parts.y_train, parts.x_val, parts.y_val, 0, "mlp", {"epochs": 5}, 3, task="regression"
    )
    digest = export(trained.model, parts.x_train.shape[1], tmp_path / "model.onnx")
    card = {"name": "diabetes", "version": 2, "sha256": digest, "task": "regression", "columns": {"features": []}}
    (tmp_path / "model.json").write_text(json.dumps(card))
    with model_server(tmp_path, tmp_path / "server.log") as (url, _):
        yield url, parts.x_test[:20], parts.y_test[:20]


def test_lathe_family_gives_a_regressors_mae_from_the_model_servers_feedback(
    prometheus: Prometheus, regressor: tuple[str, np.ndarray, np.ndarray]
) -> None:
    url, rows, truth = regressor
    prometheus.scrape([url.removeprefix("http://")])
    eventually(lambda: prometheus.query(f'up{{instance="{url.removeprefix("http://")}"}} == 1'), timeout=30)
    expected = None
    for round_ in range(24):  # the same rows and truth each round: every round's mean absolute error is the same
        code, answer = call(
            url, "/api/v1.0/predictions", {"data": {"ndarray": rows.tolist()}, "meta": {"puid": f"r{round_}"}}
        )
        assert code == 200
        values = np.asarray(answer["data"]["ndarray"])[:, 0]
        expected = float(np.abs(values - truth).mean())
        body = {"response": {"meta": {"puid": f"r{round_}"}}, "truth": {"data": {"ndarray": truth.tolist()}}}
        assert call(url, "/api/v1.0/feedback", body)[0] == 200
        time.sleep(0.25)
    metrics = call(url, "/metrics")[1]
    line = next(x for x in metrics.splitlines() if x.startswith("lathe_model_feedback_absolute_error_count{"))
    labels = dict(part.split("=", 1) for part in line.split("{", 1)[1].split("}", 1)[0].split(","))
    namespace, deployment = labels["namespace"].strip('"'), labels["deployment"].strip('"')
    source = PrometheusMetrics(prometheus.url, "lathe")

    def measured() -> dict[str, float | None]:
        found = source.version(namespace, deployment, 2, "30s")
        assert found["mae"] is not None and found["requests"], found
        return found

    candidate = eventually(measured, timeout=60)
    assert expected is not None and abs(candidate["mae"] - expected) <= 1e-3 * expected, (candidate, expected)  # type: ignore[operator]
    assert candidate["accuracy"] is None  # a regressor's feedback counts no right or wrong answers

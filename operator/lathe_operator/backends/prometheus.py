"""Canary figures from the Prometheus HTTP API (``/api/v1/query``), per model version over a window.

Two metric families answer the same questions: Lathe's model server (``lathe_model_*``,
the default: locally and in the SeldonDeployments Lathe renders, where Lathe's server is
the model container) and Seldon Core's executor (``seldon_api_executor_*``, one predictor
per version named ``v<N>``; its feedback "accuracy" is the reward clients send).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Literal


class MetricsUnavailable(Exception):
    reason = "MetricsUnavailable"


def _lathe(namespace: str, deployment: str, version: int) -> dict[str, str]:
    base = f'namespace="{namespace}",deployment="{deployment}",version="{version}"'
    selector = base + ',protocol!~"shadow|pinned"'
    return {
        "requests": f"sum(increase(lathe_model_requests_total{{{selector}}}[W]))",
        "errors": f'sum(increase(lathe_model_requests_total{{{selector},code=~"5.."}}[W]))',
        "p99": f"histogram_quantile(0.99, sum by (le) (rate(lathe_model_request_seconds_bucket{{{selector}}}[W])))",
        "right": f'sum(increase(lathe_model_feedback_total{{{base},correct="true"}}[W]))',
        "feedback": f"sum(increase(lathe_model_feedback_total{{{base}}}[W]))",
        "error_sum": f"sum(increase(lathe_model_feedback_absolute_error_sum{{{base}}}[W]))",
        "error_count": f"sum(increase(lathe_model_feedback_absolute_error_count{{{base}}}[W]))",
    }


def _seldon(namespace: str, deployment: str, version: int) -> dict[str, str]:
    base = f'namespace="{namespace}",deployment_name="{deployment}",predictor_name="v{version}"'
    selector = base + ',service="predictions"'
    return {
        "requests": f"sum(increase(seldon_api_executor_server_requests_seconds_count{{{selector}}}[W]))",
        "errors": f'sum(increase(seldon_api_executor_server_requests_seconds_count{{{selector},code=~"5.."}}[W]))',
        "p99": f"histogram_quantile(0.99, sum by (le) "
        f"(rate(seldon_api_executor_server_requests_seconds_bucket{{{selector}}}[W])))",
        "right": f"sum(increase(seldon_api_model_feedback_reward_total{{{base}}}[W]))",
        "feedback": f"sum(increase(seldon_api_model_feedback_total{{{base}}}[W]))",
    }


class PrometheusMetrics:
    def __init__(self, url: str, family: Literal["lathe", "seldon"] = "lathe", timeout: float = 10.0) -> None:
        self.url, self.family, self.timeout = url.rstrip("/"), family, timeout

    def query(self, promql: str) -> float | None:
        """The single value of an instant query; None when there is no data (or it is NaN)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.load(response)
        except (OSError, urllib.error.URLError, ValueError) as error:
            raise MetricsUnavailable(f"Prometheus at {self.url} did not answer: {error}") from error
        if body.get("status") != "success":
            raise MetricsUnavailable(f"Prometheus refused {promql!r}: {body.get('error')}")
        result = body["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) or math.isinf(value) else value

    def version(self, namespace: str, deployment: str, version: int, window: str) -> dict[str, float | None]:
        """requests, error_rate, p99_ms, accuracy and (a regressor's) mae of one version over ``window`` (a
        Prometheus duration)."""
        queries = (_lathe if self.family == "lathe" else _seldon)(namespace, deployment, version)
        values = {k: self.query(q.replace("[W]", f"[{window}]")) for k, q in queries.items()}
        requests = values["requests"] or 0.0
        feedback = values["feedback"] or 0.0
        return {
            "requests": requests,
            "error_rate": (values["errors"] or 0.0) / requests if requests else None,
            "p99_ms": values["p99"] * 1000 if values["p99"] is not None else None,
            "accuracy": (values["right"] or 0.0) / feedback if feedback else None,
            "mae": (values.get("error_sum") or 0.0) / graded if (graded := values.get("error_count")) else None,
        }

"""Lathe's model server over real HTTP: both protocols, micro-batching, 4xx for bad input, Prometheus scraping."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from lathe_pipelines.sample_data import digits
from tests.conftest import eventually
from tests.servers.model_server import model_server
from tests.servers.prometheus import Prometheus
from tests.unit.test_serving_model import model_dir  # noqa: F401  (fixture: a tiny trained model)

ROWS = digits().drop(columns="label").to_numpy(dtype="float32")


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with model_server(model_dir, tmp_path_factory.mktemp("server") / "server.log", "--max-wait-ms", "5") as (url, _):
        yield url


def call(url: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url + path,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text.startswith((b"{", b"[")) else text.decode()
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text.startswith(b"{") else text.decode()
    except OSError:
        return 0, None


def test_both_protocols_match_in_process_onnxruntime(server: str, model_dir: Path) -> None:
    logits = ort.InferenceSession(str(model_dir / "model.onnx")).run(None, {"input": ROWS[:5]})[0]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    code, seldon = call(server, "/api/v1.0/predictions", {"data": {"ndarray": ROWS[:5].tolist()}})
    assert code == 200 and np.allclose(seldon["data"]["ndarray"], expected, atol=1e-6)
    assert (
        seldon["data"]["names"] == [str(i) for i in range(10)] and seldon["meta"]["requestPath"]["model"] == "digits:3"
    )
    body = {
        "id": "r1",
        "inputs": [{"name": "input", "shape": [5, 64], "datatype": "FP32", "data": ROWS[:5].ravel().tolist()}],
    }
    code, v2 = call(server, "/v2/models/digits/infer", body)
    assert code == 200 and v2["id"] == "r1" and v2["model_version"] == "3"
    assert np.allclose(np.reshape(v2["outputs"][0]["data"], v2["outputs"][0]["shape"]), expected, atol=1e-6)
    assert call(server, "/health/ping") == (200, "pong")
    assert call(server, "/v2/models/digits")[1]["inputs"][0]["shape"] == [-1, 64]


@pytest.mark.parametrize(
    ("path", "body", "code", "reason"),
    [
        ("/api/v1.0/predictions", b"not json", 400, "InvalidJSON"),
        ("/api/v1.0/predictions", {"data": {"ndarray": [[1.0] * 3]}}, 400, "InvalidShape"),
        ("/api/v1.0/predictions", {"data": {"ndarray": [["x"] * 64]}}, 400, "InvalidInput"),
        ("/api/v1.0/predictions", {"rows": [1]}, 400, "InvalidRequest"),
        ("/api/v1.0/predictions", [1, 2], 400, "InvalidRequest"),
        ("/v2/models/other/infer", {"inputs": []}, 404, "ModelNotFound"),
        (
            "/v2/models/digits/infer",
            {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "BYTES", "data": []}]},
            400,
            "InvalidDatatype",
        ),
        (
            "/v2/models/digits/infer",
            {"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": [1.0]}]},
            400,
            "InvalidShape",
        ),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason(server: str, path: str, body: Any, code: int, reason: str) -> None:
    status, answer = call(server, path, raw=body if isinstance(body, bytes) else json.dumps(body).encode())
    assert status == code and reason in json.dumps(answer)


def test_oversized_body_is_refused_and_the_server_stays_up(server: str) -> None:
    status, _ = call(server, "/api/v1.0/predictions", raw=b"[" + b"1," * (5 << 20) + b"1]")
    assert status == 413
    assert call(server, "/health/ping") == (200, "pong")


def test_concurrent_requests_are_batched_and_metrics_are_scraped(server: str, prometheus: Prometheus) -> None:
    def one(i: int) -> int:
        return call(server, "/api/v1.0/predictions", {"data": {"ndarray": [ROWS[i % 100].tolist()]}})[0]

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, range(400))) == {200}
    assert call(server, "/api/v1.0/predictions", {"data": {"ndarray": [[1.0]]}})[0] == 400
    prometheus.scrape([server.removeprefix("http://")])
    queries = {
        "ok": 'sum(lathe_model_requests_total{code="200"})',
        "bad": 'sum(lathe_model_requests_total{code="400"})',
        "rows_per_call": "sum(lathe_model_batch_rows_sum) / sum(lathe_model_batch_rows_count)",
    }

    def scraped() -> dict[str, float]:
        found = {}
        for name, query in queries.items():
            result = prometheus.query(query)
            assert result, query
            found[name] = float(result[0]["value"][1])
        return found

    values = eventually(scraped, timeout=60)
    assert values["ok"] >= 400 and values["bad"] >= 1
    assert values["rows_per_call"] > 1.0  # concurrent requests shared onnxruntime calls


def _malformed() -> Any:
    from hypothesis import strategies as st

    from tests.unit.test_serving_model import json_values

    bodies = json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=300)
    wrapped = json_values.map(lambda v: json.dumps({"data": {"ndarray": v}}).encode()) | json_values.map(
        lambda v: json.dumps({"inputs": [{"name": "input", "shape": v, "datatype": "FP32", "data": v}]}).encode()
    )
    paths = st.sampled_from(
        ["/api/v1.0/predictions", "/predict", "/v2/models/digits/infer", "/api/v1.0/feedback", "/v2/models/nope/infer"]
    )
    return st.tuples(paths, bodies | wrapped)


def test_thousands_of_malformed_requests_get_4xx_and_the_server_stays_up(server: str) -> None:
    from hypothesis import HealthCheck, given, settings

    seen: dict[int, int] = {}

    @settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(request=_malformed())
    def check(request: tuple[str, bytes]) -> None:
        path, body = request
        status, answer = call(server, path, raw=body)
        seen[status] = seen.get(status, 0) + 1
        assert status == 200 or 400 <= status < 500, (path, body[:200], status, answer)

    check()
    assert sum(seen.values()) == 3000 and sum(n for code, n in seen.items() if 400 <= code < 500) > 2500
    assert call(server, "/health/ping") == (200, "pong")


def test_workers_share_the_port_add_up_their_metrics_and_are_supervised(
    model_dir: Path,
    tmp_path: Path,
) -> None:
    import signal

    with model_server(model_dir, tmp_path / "server.log", "--workers", "2") as (url, process):

        def workers() -> list[int]:
            found = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
            return [int(pid) for pid in found]

        eventually(lambda: len(workers()) == 2, timeout=60)
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda i: call(url, "/api/v1.0/predictions", {"data": {"ndarray": [ROWS[i % 100].tolist()]}})[0],
                    range(200),
                )
            )
        assert codes == [200] * 200
        total = sum(
            float(line.split()[-1])
            for line in call(url, "/metrics")[1].splitlines()
            if line.startswith("lathe_model_requests_total{") and 'code="200"' in line
        )
        assert total == 200  # whichever worker answers /metrics counts both
        first = workers()
        os.kill(first[0], signal.SIGKILL)
        eventually(lambda: len(workers()) == 2 and first[0] not in workers(), timeout=30)
        eventually(lambda: call(url, "/health/ping") == (200, "pong"), timeout=30)
    assert process.returncode == 0 and workers() == []  # stopped gracefully, workers and all


def test_feedback_grades_only_answers_this_server_gave_and_each_once(server: str) -> None:
    def graded() -> float:
        text = call(server, "/metrics")[1]
        return sum(
            float(line.split()[-1]) for line in text.splitlines() if line.startswith("lathe_model_feedback_total{")
        )

    before = graded()
    code, answer = call(
        server, "/api/v1.0/predictions", {"data": {"ndarray": ROWS[:2].tolist()}, "meta": {"puid": "fb1"}}
    )
    assert code == 200 and len(answer["meta"]["tags"]["lathe.dev/answer"]) == 32
    names = answer["data"]["names"]
    predicted = [names[int(np.argmax(row))] for row in answer["data"]["ndarray"]]
    # A made-up answer for a request never made: graded against nothing, and not logged.
    forged = {**answer, "meta": {**answer["meta"], "puid": "fb-made-up"}}
    code, body = call(server, "/api/v1.0/feedback", {"response": forged, "truth": {"data": {"ndarray": predicted}}})
    assert code == 200 and body["meta"]["tags"]["matched"] is False
    # Truth that does not fit the answer: 400 with the reason, and the answer can still be graded.
    code, body = call(server, "/api/v1.0/feedback", {"response": answer, "truth": {"data": {"ndarray": ["1"]}}})
    assert code == 400 and "answered with 2 rows" in body["status"]["info"], body
    code, body = call(server, "/api/v1.0/feedback", {"response": answer, "truth": {"data": {"ndarray": predicted}}})
    assert code == 200 and body["meta"]["tags"] == {"matched": True, "version": 3, "correct": 2}
    code, body = call(server, "/api/v1.0/feedback", {"response": answer, "truth": {"data": {"ndarray": predicted}}})
    assert code == 200 and body["meta"]["tags"]["reason"] == "this answer was graded already"
    assert graded() == before + 2


def test_clients_cannot_inflate_feedback_or_steer_a_version_into_the_analysis(server: str) -> None:
    """A feedback body with a 100,000-character id is refused (it grew a server by 5 GB before); truth naming a
    class the model lacks is refused; a V2 request pinned to a version is answered, counted as ``pinned`` (which
    the canary's queries leave out) and cannot be graded."""
    flood = {"response": {"meta": {"puid": "x" * 100_000}}, "truth": {"data": {"ndarray": [1] * 10_000}}}
    code, body = call(server, "/api/v1.0/feedback", flood)
    assert code == 400 and "at most 128" in body["status"]["info"], body
    code, answer = call(server, "/api/v1.0/predictions", {"data": {"ndarray": ROWS[:1].tolist()}})
    code, body = call(server, "/api/v1.0/feedback", {"response": answer, "truth": {"data": {"ndarray": ["cat"]}}})
    assert code == 400 and body["status"]["reason"] == "UnknownClass", body
    pinned = {
        "id": "pinned-1",
        "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROWS[0].tolist()}],
    }
    code, body = call(server, "/v2/models/digits:3/infer", pinned)
    assert code == 200 and body["model_version"] == "3"
    metrics = call(server, "/metrics")[1]
    assert any(
        line.startswith("lathe_model_requests_total{") and 'protocol="pinned"' in line for line in metrics.splitlines()
    )
    feedback = {"response": {"meta": {"puid": "pinned-1"}}, "truth": {"data": {"ndarray": ["1"]}}}
    code, body = call(server, "/api/v1.0/feedback", feedback)
    assert code == 200 and body["meta"]["tags"]["matched"] is False

"""A small stand-in for the Kubeflow Pipelines v2beta1 REST API (healthz, experiments, runs).

The KFP server cannot run here (it needs pods), so tests talk to this instead, through the
real ``kfp.Client``. It follows the documented contract: snake_case JSON, filters as
url-encoded JSON predicates, 404 for unknown ids, 400 with a message for an invalid run.
Tests play the KFP controller by calling ``set_state``; ``down`` makes every call a 503.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/apis/v2beta1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _matches(item: dict[str, Any], filter_text: str | None) -> bool:
    if not filter_text:
        return True
    for predicate in json.loads(filter_text).get("predicates", []):
        if predicate.get("operation") not in ("EQUALS", 1):
            raise ValueError(f"unsupported filter operation {predicate.get('operation')}")
        if item.get(predicate["key"]) != predicate.get("stringValue", predicate.get("string_value")):
            return False
    return True


class FakeKfp:
    def __init__(self, host: str = "127.0.0.1") -> None:
        """``host``: where it listens; the node's address for an operator in a pod."""
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.down = False
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                with fake.lock:
                    fake.requests.append((method, url.path))
                    if fake.down:
                        return self._send(503, {"error": "unavailable", "code": 14, "message": "KFP API is down"})
                    try:
                        code, answer = fake.route(method, url.path, query, body)
                    except ValueError as error:
                        code, answer = 400, {"error": str(error), "code": 3, "message": str(error)}
                self._send(code, answer)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def start(self) -> FakeKfp:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == f"{API}/healthz":
            return 200, {"commit_sha": "fake", "tag_name": "2.5.0", "multi_user": False}
        if path == f"{API}/experiments" and method == "GET":
            found = [e for e in self.experiments.values() if _matches(e, query.get("filter"))]
            return 200, {"experiments": found, "total_size": len(found)}
        if path == f"{API}/experiments" and method == "POST":
            if not body.get("display_name"):
                raise ValueError("experiment display_name is required")
            namespace = body.get("namespace") or ""
            if any(
                e["display_name"] == body["display_name"] and e["namespace"] == namespace
                for e in self.experiments.values()
            ):
                message = f"Failed to create a new experiment. The name {body['display_name']} already exists."
                return 409, {"error": message, "code": 6, "message": message}  # the KFP API: names are unique
            experiment = {
                "experiment_id": str(uuid.uuid4()),
                "display_name": body["display_name"],
                "description": body.get("description") or "",
                "namespace": body.get("namespace") or "",
                "created_at": _now(),
                "storage_state": "AVAILABLE",
            }
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if path == f"{API}/runs" and method == "GET":
            found = [
                r
                for r in self.runs.values()
                if _matches(r, query.get("filter"))
                and (not query.get("experiment_id") or r["experiment_id"] == query["experiment_id"])
            ]
            return 200, {"runs": found, "total_size": len(found)}
        if path == f"{API}/runs" and method == "POST":
            return 200, self._create_run(body)
        if path.startswith(f"{API}/runs/") and method == "GET":
            run = self.runs.get(path.rsplit("/", 1)[-1])
            return (200, run) if run else (404, {"error": "run not found", "code": 5, "message": "run not found"})
        return 404, {"error": f"no route {method} {path}", "code": 5, "message": "not found"}

    def _create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("pipeline_spec") or {}
        pipeline = spec.get("pipeline_spec", spec)
        if not body.get("display_name") or "root" not in pipeline or "pipelineInfo" not in pipeline:
            raise ValueError("a run needs display_name and an inline pipeline_spec with root and pipelineInfo")
        if body.get("experiment_id") not in self.experiments:
            raise ValueError(f"experiment {body.get('experiment_id')} does not exist")
        parameters = (body.get("runtime_config") or {}).get("parameters") or {}
        required = (pipeline["root"].get("inputDefinitions") or {}).get("parameters") or {}
        missing = [name for name, p in required.items() if not p.get("isOptional") and name not in parameters]
        if missing:
            raise ValueError(f"missing pipeline parameters {missing}")
        run = {
            "run_id": str(uuid.uuid4()),
            "display_name": body["display_name"],
            "experiment_id": body["experiment_id"],
            "pipeline_spec": spec,
            "runtime_config": body.get("runtime_config") or {},
            "state": "PENDING",
            "created_at": _now(),
            "storage_state": "AVAILABLE",
            "state_history": [{"update_time": _now(), "state": "PENDING"}],
        }
        self.runs[run["run_id"]] = run
        return run

    def set_state(self, run_id: str, state: str, error: str | None = None) -> None:
        """Play the KFP controller: move a run along."""
        with self.lock:
            run = self.runs[run_id]
            run["state"] = state
            run["state_history"].append({"update_time": _now(), "state": state})
            if state in ("SUCCEEDED", "FAILED", "CANCELED"):
                run["finished_at"] = _now()
            if error:
                run["error"] = {"code": 2, "message": error}

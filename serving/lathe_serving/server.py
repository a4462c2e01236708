"""Lathe's model server: aiohttp, orjson, adaptive micro-batching, Seldon and V2 protocols, Prometheus metrics.

    python -m lathe_serving --model-dir DIR [--port 9000] [--max-batch 64] [--max-wait-ms 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import protocols
from .batching import Batcher
from .model import LatheModel, ModelError

MAX_BODY = 8 << 20
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lathe_model_requests_total", "Prediction requests", ["model", "version", "protocol", "code"],
                                registry=self.registry)
        self.latency = Histogram("lathe_model_request_seconds", "Request latency", ["model", "version", "protocol"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch = Histogram("lathe_model_batch_rows", "Rows per onnxruntime call", ["model", "version"],
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.in_flight = Gauge("lathe_model_in_flight_requests", "Requests being served", ["model", "version"],
                               registry=self.registry)
        self.load = Gauge("lathe_model_load_seconds", "Time to load the model", ["model", "version"],
                          registry=self.registry)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status=status,
                        content_type="application/json")


def make_app(model: LatheModel, max_batch: int = 64, max_wait: float = 0.002) -> web.Application:
    metrics = Metrics()
    labels = {"model": model.name, "version": str(model.version)}
    metrics.load.labels(**labels).set(model.load_seconds)
    batcher = Batcher(model.predict, max_batch, max_wait, observe=metrics.batch.labels(**labels).observe)
    names = model.class_names()

    def endpoint(protocol: str, handle: Callable[[web.Request, Any], Awaitable[Any]]) -> Callable[..., Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            metrics.in_flight.labels(**labels).inc()
            code = 200
            try:
                try:
                    body = orjson.loads(await request.read())
                except orjson.JSONDecodeError as error:
                    raise ModelError("InvalidJSON", f"body is not JSON: {error}") from error
                return json_response(await handle(request, body))
            except ModelError as error:
                code = error.status_code
                payload = error.to_dict() if protocol == "seldon" else {"error": f"{error.reason}: {error.message}"}
                return json_response(payload, code)
            finally:
                metrics.in_flight.labels(**labels).dec()
                metrics.requests.labels(**labels, protocol=protocol, code=str(code)).inc()
                metrics.latency.labels(**labels, protocol=protocol).observe(time.perf_counter() - started)

        return serve

    async def seldon_predict(_: web.Request, body: Any) -> Any:
        rows = model.check(protocols.seldon_inputs(body))
        return protocols.seldon_response(await batcher.submit(rows), names, model.name, model.version)

    async def v2_infer(request: web.Request, body: Any) -> Any:
        if request.match_info["name"] != model.name:
            raise ModelError("ModelNotFound", f"no model named {request.match_info['name']!r}; this server has "
                             f"{model.name!r}", 404)
        rows = model.check(protocols.v2_inputs(body))
        request_id = body.get("id") if isinstance(body.get("id"), str) else None
        return protocols.v2_response(await batcher.submit(rows), model.name, model.version, request_id)

    async def v2_model(request: web.Request) -> web.Response:
        if request.match_info["name"] != model.name:
            return json_response({"error": f"ModelNotFound: no model named {request.match_info['name']!r}"}, 404)
        return json_response(model.init_metadata())

    async def ready(_: web.Request) -> web.Response:
        return json_response(model.health_status())

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def on_startup(_: web.Application) -> None:
        batcher.start()

    async def on_cleanup(_: web.Application) -> None:
        await batcher.stop()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/api/v1.0/predictions", endpoint("seldon", seldon_predict))
    app.router.add_get("/health/ping", lambda _: web.Response(text="pong"))
    app.router.add_get("/health/status", ready)
    app.router.add_get("/v2/health/live", lambda _: json_response({"live": True}))
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2/models/{name}", v2_model)
    app.router.add_post("/v2/models/{name}/infer", endpoint("v2", v2_infer))
    app.router.add_get("/metrics", prometheus)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lathe_serving", description=__doc__)
    parser.add_argument("--model-dir", required=True, help="folder with model.onnx and model.json")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--max-batch", type=int, default=64, help="most rows per onnxruntime call")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="longest a queued request waits for company")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads; 0 = the cores available")
    args = parser.parse_args(argv)
    model = LatheModel(args.model_dir, threads=args.threads or None)
    model.load()
    np.seterr(all="ignore")
    web.run_app(make_app(model, args.max_batch, args.max_wait_ms / 1000), host=args.host, port=args.port,
                access_log=None, print=None)

"""Lathe's model server: aiohttp, orjson, adaptive micro-batching, Seldon and V2 protocols, Prometheus metrics.

The request path and routes; ``lathe_serving.main`` is the command that runs them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import protocols
from .batching import Batcher
from .deployment import Deployment, Settings
from .logsink import LogSink
from .model import LatheModel, ModelError

MAX_BODY = 8 << 20
REMEMBERED = 100_000  # predictions kept for joining feedback by request id
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LABELS = ["namespace", "deployment", "model", "version"]
log = logging.getLogger("lathe_serving")


class Metrics:
    """Per process; with several workers (``PROMETHEUS_MULTIPROC_DIR`` set) /metrics adds up all of them."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            self.registry, r = CollectorRegistry(), CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry)
        self.requests = Counter("lathe_model_requests_total", "Prediction requests", [*LABELS, "protocol", "code"],
                                registry=r)
        self.latency = Histogram("lathe_model_request_seconds", "Request latency", [*LABELS, "protocol"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch = Histogram("lathe_model_batch_rows", "Rows per onnxruntime call", LABELS,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.in_flight = Gauge("lathe_model_in_flight_requests", "Requests being served", ["namespace", "deployment"],
                               registry=r, multiprocess_mode="livesum")
        self.load = Gauge("lathe_model_load_seconds", "Time to load the model", LABELS, registry=r,
                          multiprocess_mode="max")
        self.traffic = Gauge("lathe_model_traffic_percent", "Share of live traffic", LABELS, registry=r,
                             multiprocess_mode="max")
        self.feedback = Counter("lathe_model_feedback_total", "Ground truth received, by whether the prediction was "
                                "right", [*LABELS, "correct"], registry=r)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status=status,
                        content_type="application/json")


class Service:
    """The request path: route to a version, batch, answer; then shadow, sample to the log, remember for feedback."""

    def __init__(self, deployment: Deployment, metrics: Metrics, sink: LogSink | None, max_batch: int,
                 max_wait: float) -> None:
        self.deployment, self.metrics, self.sink = deployment, metrics, sink
        self.max_batch, self.max_wait = max_batch, max_wait
        self.batchers: dict[int, Batcher] = {}
        self.answers: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.children: dict[tuple[int, str, int], tuple[Any, Any]] = {}
        s = deployment.settings
        self.scope = {"namespace": s.namespace, "deployment": s.deployment}

    def labels(self, model: LatheModel) -> dict[str, str]:
        return {**self.scope, "model": model.name, "version": str(model.version)}

    def count(self, model: LatheModel, protocol: str, code: int, seconds: float) -> None:
        """Count a request and its latency (labelled children cached: this runs on every request)."""
        key = (model.version, protocol, code)
        found = self.children.get(key)
        if found is None:
            labels = self.labels(model)
            found = self.children[key] = (self.metrics.requests.labels(**labels, protocol=protocol, code=str(code)),
                                          self.metrics.latency.labels(**labels, protocol=protocol))
        found[0].inc()
        found[1].observe(seconds)

    def start(self) -> None:
        for version, model in self.deployment.models.items():
            if version not in self.batchers:
                self.batchers[version] = batcher = Batcher(model.infer, self.max_batch, self.max_wait,
                                                           observe=self.metrics.batch.labels(**self.labels(model)).observe)
                batcher.start()
                self.metrics.load.labels(**self.labels(model)).set(model.load_seconds)
        for version, model in self.deployment.models.items():
            share = self.deployment.settings.traffic.get(version, 0)
            self.metrics.traffic.labels(**self.labels(model)).set(share)

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()

    def reload(self, settings: Settings) -> None:
        for version in self.deployment.reload(settings):
            batcher = self.batchers.pop(version, None)
            if batcher is not None:
                self.tasks.add(asyncio.get_running_loop().create_task(batcher.stop()))
        self.start()

    async def predict(self, model: LatheModel, rows: np.ndarray, request_id: str) -> np.ndarray:
        outputs = await self.batchers[model.version].submit(rows)
        sampled = self.sink is not None and random.random() < self.deployment.settings.sample_rate
        labels = model.labels(outputs)
        self.answers[request_id] = (model.version, labels)
        if len(self.answers) > REMEMBERED:
            self.answers.popitem(last=False)
        if sampled:
            self.record(model, rows, outputs, labels, request_id, shadow=False)
        shadow = self.deployment.shadow
        if shadow is not None and shadow.version in self.batchers:
            task = asyncio.get_running_loop().create_task(self.mirror(shadow, rows, request_id, sampled))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return outputs

    async def mirror(self, shadow: LatheModel, rows: np.ndarray, request_id: str, sampled: bool) -> None:
        """A shadow answers every request too; its answers are counted and logged, never returned."""
        started, code = time.perf_counter(), 200
        try:
            outputs = await self.batchers[shadow.version].submit(rows)
            if sampled:
                self.record(shadow, rows, outputs, shadow.labels(outputs), request_id, shadow=True)
        except Exception:  # noqa: BLE001  (the shadow's failures are its own: counted, never surfaced)
            code = 500
        self.count(shadow, "shadow", code, time.perf_counter() - started)

    def record(self, model: LatheModel, rows: np.ndarray, outputs: np.ndarray, labels: list[str], request_id: str,
               shadow: bool) -> None:
        assert self.sink is not None
        for row, probabilities, label in zip(rows, outputs, labels, strict=True):
            self.sink.add({"kind": "prediction", "request_id": request_id, "version": model.version,
                           "shadow": shadow, "features": row.tolist(), "probabilities": probabilities.tolist(),
                           "prediction": label})

    def feedback(self, request_id: str, truth: list[str], response: Any = None) -> dict[str, Any]:
        """Join ground truth to the answer (carried in the feedback, or remembered); count it; log it."""
        answer = protocols.seldon_answer(response) or self.answers.get(request_id)
        matched = answer is not None
        version = answer[0] if answer else 0
        corrects: list[bool | None] = [None] * len(truth)
        if answer is not None:
            model = self.deployment.models.get(version)
            corrects = [t == p for t, p in zip(truth, answer[1], strict=False)]
            if model is not None:
                for correct in corrects:
                    self.metrics.feedback.labels(**self.labels(model), correct=str(correct).lower()).inc()
        if self.sink is not None:
            for value, correct in zip(truth, corrects, strict=False):
                self.sink.add({"kind": "feedback", "request_id": request_id, "version": version, "shadow": False,
                               "truth": value, "correct": correct})
        return {"matched": matched, "version": version, "correct": sum(bool(c) for c in corrects)}

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self.flush(force=False)

    async def flush(self, force: bool) -> None:
        if self.sink is not None and (force or self.sink.due()):
            records = self.sink.take()
            if records:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.sink.write, records)
                except Exception:  # noqa: BLE001  (a store outage must not stop serving; the batch is dropped)
                    log.exception("could not write %d request log records", len(records))


def make_app(deployment: Deployment | LatheModel, max_batch: int = 64, max_wait: float = 0.0,
             sink: LogSink | None = None, config: Path | None = None) -> web.Application:
    if isinstance(deployment, LatheModel):
        deployment = Deployment.of(deployment)
    metrics = Metrics()
    service = Service(deployment, metrics, sink, max_batch, max_wait)
    in_flight = metrics.in_flight.labels(**service.scope)

    def endpoint(protocol: str, handle: Callable[[web.Request, Any, LatheModel], Awaitable[tuple[Any, LatheModel]]],
                 ) -> Callable[..., Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            model = deployment.route()
            in_flight.inc()
            code = 200
            try:
                try:
                    body = orjson.loads(await request.read())
                except orjson.JSONDecodeError as error:
                    raise ModelError("InvalidJSON", f"body is not JSON: {error}") from error
                answer, model = await handle(request, body, model)
                return json_response(answer)
            except ModelError as error:
                code = error.status_code
                return json_response(error.to_dict() if protocol == "seldon" else
                                     {"error": f"{error.reason}: {error.message}"}, code)
            except web.HTTPException as error:  # aiohttp's own 4xx, e.g. 413 for an oversized body
                code = error.status
                raise
            except Exception as error:  # noqa: BLE001  (a failing model is a 500 with a reason, and counted)
                code = 500
                log.warning("inference failed on version %s: %s", model.version, error)
                failure = ModelError("InferenceFailed", f"model version {model.version} failed: {str(error)[:300]}", 500)
                return json_response(failure.to_dict() if protocol == "seldon" else {"error": failure.message}, 500)
            finally:
                in_flight.dec()
                service.count(model, protocol, code, time.perf_counter() - started)

        return serve

    async def seldon_predict(_: web.Request, body: Any, model: LatheModel) -> tuple[Any, LatheModel]:
        rows = model.check(protocols.seldon_inputs(body))
        puid = protocols.seldon_puid(body) or uuid.uuid4().hex
        outputs = await service.predict(model, rows, puid)
        return protocols.seldon_response(outputs, model.class_names(), model.name, model.version, puid), model

    async def v2_infer(request: web.Request, body: Any, _: LatheModel) -> tuple[Any, LatheModel]:
        model = deployment.by_name(request.match_info["name"])
        rows = model.check(protocols.v2_inputs(body))
        given = body.get("id") if isinstance(body.get("id"), str) else None
        outputs = await service.predict(model, rows, given or uuid.uuid4().hex)
        return protocols.v2_response(outputs, model.name, model.version, given), model

    async def feedback(request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            request_id, truth = protocols.seldon_feedback(body)
        except orjson.JSONDecodeError as error:
            return json_response(ModelError("InvalidJSON", f"body is not JSON: {error}").to_dict(), 400)
        except ModelError as error:
            return json_response(error.to_dict(), error.status_code)
        result = service.feedback(request_id, truth, body.get("response"))
        return json_response({"data": {"ndarray": []}, "meta": {"puid": request_id, "tags": result}})

    async def v2_model(request: web.Request) -> web.Response:
        try:
            return json_response(deployment.by_name(request.match_info["name"]).init_metadata())
        except ModelError as error:
            return json_response({"error": f"{error.reason}: {error.message}"}, error.status_code)

    async def ready(_: web.Request) -> web.Response:
        return json_response({**deployment.route().health_status(), **deployment.status()})

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def on_startup(app: web.Application) -> None:
        service.start()
        app["flusher"] = asyncio.get_running_loop().create_task(service.flush_forever())
        if config is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)

    def reload() -> None:
        assert config is not None
        try:
            service.reload(Settings.read(config))
            log.info("reloaded %s: %s", config, deployment.status())
        except (OSError, ValueError, KeyError, ModelError) as error:  # keep serving what we have
            log.error("could not reload %s: %s", config, error)

    async def on_cleanup(app: web.Application) -> None:
        app["flusher"].cancel()
        await service.flush(force=True)
        await service.stop()

    app = web.Application(client_max_size=MAX_BODY)
    predict = endpoint("seldon", seldon_predict)
    app.router.add_post("/api/v1.0/predictions", predict)
    app.router.add_post("/predict", predict)  # the paths Seldon's executor calls inside an inference graph
    app.router.add_post("/api/v1.0/feedback", feedback)
    app.router.add_post("/send-feedback", feedback)
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

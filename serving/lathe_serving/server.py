"""Lathe's model server: aiohttp, orjson, adaptive micro-batching, Seldon and V2 protocols, Prometheus metrics.

The request path and routes; ``lathe_serving.main`` is the command that runs them. ``Routes`` holds what the
endpoints share (deployment, service, metrics, config), one method per endpoint; ``make_app`` puts them on paths.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import protocols
from .deployment import Deployment, Settings
from .logsink import LogSink
from .model import LatheModel, ModelError
from .service import Metrics, Service

MAX_BODY = 8 << 20
log = logging.getLogger("lathe_serving")

Handle = Callable[[web.Request, Any, LatheModel], Awaitable[tuple[Any, LatheModel]]]
Endpoint = Callable[[web.Request], Awaitable[web.Response]]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status=status, content_type="application/json"
    )


def failed(protocol: str, model: LatheModel, error: Exception) -> web.Response:
    """A model that raised: logged, and answered as a 500 that names the version."""
    log.warning("Failed inference on version %s: %s", model.version, error)
    failure = ModelError("InferenceFailed", f"model version {model.version} failed: {str(error)[:300]}", 500)
    return json_response(failure.to_dict() if protocol == "seldon" else {"error": failure.message}, 500)


class Routes:
    """The endpoints of one server process and what they share; ``make_app`` decides the paths."""

    def __init__(self, deployment: Deployment, service: Service, metrics: Metrics, config: Path | None) -> None:
        self.deployment, self.service, self.metrics, self.config = deployment, service, metrics, config
        self.in_flight = metrics.in_flight.labels(**service.scope)

    def endpoint(self, protocol: str, handle: Handle) -> Endpoint:
        """Wrap a protocol's handler: JSON in and out, errors to statuses, counted, and in the in-flight gauge."""
        # The request path: what it uses is bound here once, so each request reads closure cells, not attributes.
        deployment, service, in_flight = self.deployment, self.service, self.in_flight

        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            model = deployment.route()
            # A V2 request that names its version (name:version) chose where it goes: counted apart, so the
            # canary's analysis (which leaves out "pinned", as it does "shadow") never sees traffic a client steered.
            counted = "pinned" if ":" in request.match_info.get("name", "") else protocol
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
                return json_response(
                    error.to_dict() if protocol == "seldon" else {"error": f"{error.reason}: {error.message}"}, code
                )
            except web.HTTPException as error:  # aiohttp's own 4xx, e.g. 413 for an oversized body
                code = error.status
                raise
            except Exception as error:  # noqa: BLE001  (a failing model is a 500 with a reason, and counted)
                code = 500
                return failed(protocol, model, error)
            finally:
                in_flight.dec()
                service.count(model, counted, code, time.perf_counter() - started)

        return serve

    async def seldon_predict(self, _: web.Request, body: Any, model: LatheModel) -> tuple[Any, LatheModel]:
        rows = model.check(protocols.seldon_inputs(body), names=protocols.seldon_names(body))
        puid = protocols.seldon_puid(body) or uuid.uuid4().hex
        outputs, tag = await self.service.predict(model, rows, puid)
        return protocols.seldon_response(outputs, model.class_names(), model.name, model.version, puid, tag), model

    async def v2_infer(self, request: web.Request, body: Any, _: LatheModel) -> tuple[Any, LatheModel]:
        model = self.deployment.by_name(request.match_info["name"])
        rows = model.check(protocols.v2_inputs(body, text=bool(model.categorical)))
        given = protocols.v2_id(body)
        pinned = ":" in request.match_info["name"]
        outputs, _ = await self.service.predict(model, rows, given or uuid.uuid4().hex, pinned=pinned)
        return protocols.v2_response(outputs, model.name, model.version, given), model

    async def feedback(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            request_id, truth = protocols.seldon_feedback(body)
        except orjson.JSONDecodeError as error:
            return json_response(ModelError("InvalidJSON", f"body is not JSON: {error}").to_dict(), 400)
        except ModelError as error:
            return json_response(error.to_dict(), error.status_code)
        try:
            result = self.service.feedback(request_id, truth, body.get("response"), source=request.remote or "")
        except ModelError as error:
            return json_response(error.to_dict(), error.status_code)
        return json_response({"data": {"ndarray": []}, "meta": {"puid": request_id, "tags": result}})

    async def v2_model(self, request: web.Request) -> web.Response:
        try:
            return json_response(self.deployment.by_name(request.match_info["name"]).init_metadata())
        except ModelError as error:
            return json_response({"error": f"{error.reason}: {error.message}"}, error.status_code)

    async def ping(self, _: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def live(self, _: web.Request) -> web.Response:
        return json_response({"live": True})

    async def ready(self, _: web.Request) -> web.Response:
        return json_response({**self.deployment.route().health_status(), **self.deployment.status()})

    async def prometheus(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def on_startup(self, app: web.Application) -> None:
        self.service.start()
        app["flusher"] = asyncio.get_running_loop().create_task(self.service.flush_forever())
        if self.config is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self) -> None:
        """SIGHUP: read the deployment file again and switch to its split."""
        assert self.config is not None
        try:
            self.service.reload(Settings.read(self.config))
            log.info("Reloaded %s: %s", self.config, self.deployment.status())
        except (OSError, ValueError, KeyError, ModelError) as error:  # keep serving what we have
            log.error("Kept the old split: could not reload %s: %s", self.config, error)

    async def on_cleanup(self, app: web.Application) -> None:
        app["flusher"].cancel()
        await self.service.flush(force=True)
        await self.service.stop()


def make_app(
    deployment: Deployment | LatheModel,
    max_batch: int = 64,
    max_wait: float = 0.0,
    sink: LogSink | None = None,
    config: Path | None = None,
) -> web.Application:
    """The application of one server process: a ``Routes`` on Seldon's and V2's paths."""
    if isinstance(deployment, LatheModel):
        deployment = Deployment.of(deployment)
    metrics = Metrics()
    routes = Routes(deployment, Service(deployment, metrics, sink, max_batch, max_wait), metrics, config)
    app = web.Application(client_max_size=MAX_BODY)
    predict = routes.endpoint("seldon", routes.seldon_predict)
    app.router.add_post("/api/v1.0/predictions", predict)
    app.router.add_post("/predict", predict)  # the paths Seldon's executor calls inside an inference graph
    app.router.add_post("/api/v1.0/feedback", routes.feedback)
    app.router.add_post("/send-feedback", routes.feedback)
    app.router.add_get("/health/ping", routes.ping)
    app.router.add_get("/health/status", routes.ready)
    app.router.add_get("/v2/health/live", routes.live)
    app.router.add_get("/v2/health/ready", routes.ready)
    app.router.add_get("/v2/models/{name}", routes.v2_model)
    app.router.add_post("/v2/models/{name}/infer", routes.endpoint("v2", routes.v2_infer))
    app.router.add_get("/metrics", routes.prometheus)
    app.on_startup.append(routes.on_startup)
    app.on_cleanup.append(routes.on_cleanup)
    return app

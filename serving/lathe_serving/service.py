"""The request path of Lathe's model server: route to a version, batch, answer; shadow, log, feedback, metrics.

``server.make_app`` puts it behind HTTP routes; this module knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from . import protocols
from .answers import Answer, Answers, configured_key
from .batching import Batcher
from .deployment import Deployment, Settings
from .logsink import LogSink
from .model import LatheModel, ModelError

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
        self.requests = Counter(
            "lathe_model_requests_total", "Prediction requests", [*LABELS, "protocol", "code"], registry=r
        )
        self.latency = Histogram(
            "lathe_model_request_seconds", "Request latency", [*LABELS, "protocol"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch = Histogram(
            "lathe_model_batch_rows",
            "Rows per onnxruntime call",
            LABELS,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.in_flight = Gauge(
            "lathe_model_in_flight_requests",
            "Requests being served",
            ["namespace", "deployment"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.load = Gauge(
            "lathe_model_load_seconds", "Time to load the model", LABELS, registry=r, multiprocess_mode="max"
        )
        self.traffic = Gauge(
            "lathe_model_traffic_percent", "Share of live traffic", LABELS, registry=r, multiprocess_mode="max"
        )
        self.feedback = Counter(
            "lathe_model_feedback_total",
            "Ground truth received, by whether the prediction was right",
            [*LABELS, "correct"],
            registry=r,
        )
        self.error = Summary(  # its _sum over its _count is a regressor's live MAE
            "lathe_model_feedback_absolute_error",
            "Absolute error of a regressor's answers, from ground truth",
            LABELS,
            registry=r,
        )
        self.unmatched = Counter(
            "lathe_model_feedback_unmatched_total",
            "Feedback not graded: no answer this deployment gave, or one graded already",
            ["namespace", "deployment", "reason"],
            registry=r,
        )
        self.dropped = Counter(
            "lathe_model_log_records_dropped_total",
            "Request log records dropped because the store could not keep up",
            ["namespace", "deployment"],
            registry=r,
        )


class Service:
    """The request path: route to a version, batch, answer; then shadow, sample to the log, remember for feedback."""

    def __init__(
        self,
        deployment: Deployment,
        metrics: Metrics,
        sink: LogSink | None,
        max_batch: int,
        max_wait: float,
        answers: Answers | None = None,
    ) -> None:
        self.deployment, self.metrics, self.sink = deployment, metrics, sink
        self.max_batch, self.max_wait = max_batch, max_wait
        self.batchers: dict[int, Batcher] = {}
        s = deployment.settings
        self.answers = answers or Answers(configured_key(s.namespace, s.deployment or deployment.name))
        self.tasks: set[asyncio.Task[Any]] = set()
        self.flushing = asyncio.Lock()
        self.children: dict[tuple[int, str, int], tuple[Any, Any]] = {}
        self.scope = {"namespace": s.namespace, "deployment": s.deployment}

    def labels(self, model: LatheModel) -> dict[str, str]:
        return {**self.scope, "model": model.name, "version": str(model.version)}

    def count(self, model: LatheModel, protocol: str, code: int, seconds: float) -> None:
        """Count a request and its latency (labelled children cached: this runs on every request)."""
        key = (model.version, protocol, code)
        found = self.children.get(key)
        if found is None:
            labels = self.labels(model)
            found = self.children[key] = (
                self.metrics.requests.labels(**labels, protocol=protocol, code=str(code)),
                self.metrics.latency.labels(**labels, protocol=protocol),
            )
        found[0].inc()
        found[1].observe(seconds)

    def start(self) -> None:
        for version, model in self.deployment.models.items():
            if version not in self.batchers:
                self.batchers[version] = batcher = Batcher(
                    model.infer,
                    self.max_batch,
                    self.max_wait,
                    observe=self.metrics.batch.labels(**self.labels(model)).observe,
                )
                batcher.start()
                self.metrics.load.labels(**self.labels(model)).set(model.load_seconds)
        for version, model in self.deployment.models.items():
            share = self.deployment.settings.traffic.get(version, 0)
            self.metrics.traffic.labels(**self.labels(model)).set(share)

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()

    def reload(self, settings: Settings) -> None:
        if settings.sample_rate > 0 and self.sink is None:  # logging turned on after start
            from .logsink import store_put

            self.sink = LogSink(
                store_put(), settings.namespace or "default", settings.deployment or self.deployment.name
            )
        for version in self.deployment.reload(settings):
            batcher = self.batchers.pop(version, None)
            if batcher is not None:
                self.tasks.add(asyncio.get_running_loop().create_task(batcher.stop()))
        self.start()

    async def predict(
        self, model: LatheModel, rows: np.ndarray, request_id: str, pinned: bool = False
    ) -> tuple[np.ndarray, str]:
        """The model's outputs and the answer's signature (which feedback may carry back).

        ``pinned``: the client chose the version (V2's ``name:version``). Such an answer is served and counted
        apart, but neither remembered for grading nor logged: a client that steers its traffic must not grade
        a canary or feed the closed loop."""
        batcher = self.batchers.get(model.version)
        if batcher is None:  # routed just before a reload dropped this version: take the current split
            model = self.deployment.route()
            batcher = self.batchers[model.version]
        outputs = await batcher.submit(rows)
        if pinned:
            return outputs, ""
        sampled = self.sink is not None and random.random() < self.deployment.settings.sample_rate
        answer = Answer(model.version, model.labels(outputs))
        self.answers.remember(request_id, answer)
        tag = self.answers.sign(request_id, answer)
        if sampled:
            self.record(model, rows, outputs, answer.labels, request_id, tag, shadow=False)
        shadow = self.deployment.shadow
        if shadow is not None and shadow.version in self.batchers:
            task = asyncio.get_running_loop().create_task(self.mirror(shadow, rows, request_id, sampled))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return outputs, tag

    async def mirror(self, shadow: LatheModel, rows: np.ndarray, request_id: str, sampled: bool) -> None:
        """A shadow answers every request too; its answers are counted and logged, never returned."""
        started, code = time.perf_counter(), 200
        try:
            outputs = await self.batchers[shadow.version].submit(rows)
            if sampled:
                self.record(shadow, rows, outputs, shadow.labels(outputs), request_id, None, shadow=True)
        except Exception:  # noqa: BLE001  (the shadow's failures are its own: counted, never surfaced)
            code = 500
        self.count(shadow, "shadow", code, time.perf_counter() - started)

    def record(
        self,
        model: LatheModel,
        rows: np.ndarray,
        outputs: np.ndarray,
        labels: list[str],
        request_id: str,
        tag: str | None,
        shadow: bool,
    ) -> None:
        """Log each served row; a row the sink's bound refuses is counted as dropped (the store is slow or down)."""
        assert self.sink is not None
        for i, (row, probabilities, label) in enumerate(zip(rows, outputs, labels, strict=True)):
            features, categories = model.raw(row)
            kept = self.sink.add(
                {
                    "kind": "prediction",
                    "request_id": request_id,
                    "answer": tag,
                    "version": model.version,
                    "shadow": shadow,
                    "features": features,
                    "categories": categories,
                    "probabilities": probabilities.tolist(),
                    "prediction": label,
                }
            )
            if not kept:
                self.metrics.dropped.labels(**self.scope).inc(len(rows) - i)
                return

    def feedback(self, request_id: str, truth: list[str], response: Any = None, source: str = "") -> dict[str, Any]:
        """Grade ground truth against the answer this deployment gave (remembered, or carried back signed),
        once; count it; log it bound to that answer's tag. Truth bound to no answer is counted and dropped:
        live accuracy and the closed loop's harvest use only truth bound to an answer this deployment gave."""
        carried = protocols.seldon_answer(response)
        answer = self.answers.find(request_id, *(carried or (None, None)))
        if answer is None:
            reason = "graded" if self.answers.was_graded(request_id) else "unknown"
            self.metrics.unmatched.labels(**self.scope, reason=reason).inc()
            if reason == "graded":
                return {"matched": False, "reason": "this answer was graded already"}
            return {"matched": False, "reason": "no answer this deployment gave has this request id"}
        if len(answer.labels) != len(truth):
            raise ModelError(
                "InvalidRequest",
                f"truth has {len(truth)} classes; request {request_id[:128]} was answered with {len(answer.labels)} rows",
            )
        model = self.deployment.models.get(answer.version)
        corrects: list[bool | None] = [None] * len(truth)
        if model is not None and model.regression:
            errors = regression_errors(truth, answer.labels)
            self.answers.graded_now(request_id)
            for error in errors:
                self.metrics.error.labels(**self.labels(model)).observe(error)
        else:
            if model is not None:
                refuse_unknown_classes(truth, model.class_names())
            self.answers.graded_now(request_id)
            corrects = [t == p for t, p in zip(truth, answer.labels, strict=True)]
            if model is not None:
                for correct in corrects:
                    self.metrics.feedback.labels(**self.labels(model), correct=str(correct).lower()).inc()
        self.log_truth(request_id, self.answers.sign(request_id, answer), answer.version, truth, corrects, source)
        if model is not None and model.regression:
            return {"matched": True, "version": answer.version, "absoluteError": sum(errors) / len(errors)}
        return {"matched": True, "version": answer.version, "correct": sum(bool(c) for c in corrects)}

    def log_truth(
        self, request_id: str, tag: str, version: int, truth: list[str], corrects: list[bool | None], source: str
    ) -> None:
        if self.sink is None:
            return
        for i, (value, correct) in enumerate(zip(truth, corrects, strict=True)):
            kept = self.sink.add(
                {
                    "kind": "feedback",
                    "request_id": request_id,
                    "answer": tag,
                    "source": source,
                    "version": version,
                    "shadow": False,
                    "truth": value,
                    "correct": correct,
                }
            )
            if not kept:
                self.metrics.dropped.labels(**self.scope).inc(len(truth) - i)
                return

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self.flush(force=False)

    async def flush(self, force: bool) -> None:
        """One write at a time (the periodic flusher and the last flush at shutdown share the lock)."""
        async with self.flushing:
            if self.sink is not None and (force or self.sink.due()):
                records = self.sink.take()
                if not records:
                    return
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.sink.write, records)
                except Exception:  # noqa: BLE001  (a store outage must not stop serving; the batch is dropped)
                    log.exception("Dropped %d request log records: the store refused them", len(records))
                finally:
                    self.sink.written(records)


def refuse_unknown_classes(truth: list[str], classes: list[str]) -> None:
    """A classifier's truth must name classes the model was trained on: anything else would teach it nothing
    but what a client made up."""
    known = set(classes)
    unknown = sorted({t for t in truth if t not in known})
    if known and unknown:
        raise ModelError(
            "UnknownClass",
            f"truth names {len(unknown)} class(es) the model does not have, e.g. {unknown[0][:64]!r}; "
            f"its classes are {', '.join(classes[:20])}",
        )


def regression_errors(truth: list[str], answered: list[str]) -> list[float]:
    """|truth - answer| per row of a regressor's answer; a truth that is not a number is refused."""
    try:
        values = [float(t) for t in truth]
    except ValueError as error:
        raise ModelError("InvalidRequest", f"a regressor's truth must be numbers: {error}") from error
    if not all(math.isfinite(v) for v in values):
        raise ModelError("InvalidRequest", "a regressor's truth must be finite numbers")
    return [abs(t - float(a)) for t, a in zip(values, answered, strict=True)]

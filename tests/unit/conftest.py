"""Fixtures the unit tests share: a tiny trained digits model, and a started model-server Service around it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps.classifier import train
from lathe_pipelines.steps.export import export
from lathe_pipelines.steps.split import split
from lathe_serving.answers import Answers
from lathe_serving.deployment import Deployment
from lathe_serving.logsink import LogSink
from lathe_serving.model import LatheModel
from lathe_serving.service import Metrics, Service

RunService = Callable[[Callable[[Service], Awaitable[Any]], LogSink | None], Any]


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> LatheModel:
    """A one-epoch MLP on 300 digits rows, registered as digits version 3."""
    directory = tmp_path_factory.mktemp("digits-model")
    parts = split(digits().iloc[:300], "label", 5)
    trained = train(parts.x_train, parts.y_train, parts.x_val, parts.y_val, 10, "mlp", {"epochs": 1, "hidden": [8]}, 5)
    digest = export(trained.model, 64, directory / "model.onnx")
    card = {"name": "digits", "version": 3, "sha256": digest, "columns": {"classes": parts.classes}}
    (directory / "model.json").write_text(json.dumps(card))
    loaded = LatheModel(str(directory), threads=1)
    loaded.load()
    return loaded


@pytest.fixture
def run_service(digits_model: LatheModel) -> RunService:
    """``run(work, sink)``: ``work(service)`` against a started Service of ``digits_model`` (batchers need a loop)."""

    def run(work: Callable[[Service], Awaitable[Any]], sink: LogSink | None = None) -> Any:
        async def main() -> Any:
            served = Service(Deployment.of(digits_model), Metrics(), sink, 64, 0.0, Answers(b"k" * 32))
            served.start()
            try:
                return await work(served)
            finally:
                await served.stop()

        return asyncio.run(main())

    return run

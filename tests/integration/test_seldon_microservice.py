"""The same model class under the real seldon-core-microservice (its own venv): predictions and 4xx reasons."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, eventually
from tests.integration.test_model_server import ROWS, call
from tests.servers.process import free_port
from tests.unit.test_serving_model import model_dir  # noqa: F401  (fixture: a tiny trained model)


@pytest.fixture(scope="module")
def seldon(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    venv = subprocess.run(
        [str(ROOT / "hack/serving-venv.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    port = free_port()
    parameters = json.dumps([{"name": "model_dir", "value": str(model_dir), "type": "STRING"}])
    log = tmp_path_factory.mktemp("seldon") / "seldon.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                f"{venv}/bin/seldon-core-microservice",
                "lathe_serving.model.LatheModel",
                "--service-type",
                "MODEL",
                "--http-port",
                str(port),
                "--grpc-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
                "--parameters",
                parameters,
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=out,
            env={**env, "PYTHONPATH": str(ROOT / "serving")},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: call(url, "/health/ping")[0] == 200, timeout=90)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(20)


def test_seldon_serves_the_lathe_model(seldon: str, model_dir: Path) -> None:
    from lathe_serving.model import LatheModel

    local = LatheModel(str(model_dir))
    local.load()
    code, answer = call(seldon, "/api/v1.0/predictions", {"data": {"ndarray": ROWS[:4].tolist()}})
    assert code == 200 and np.allclose(answer["data"]["ndarray"], local.predict(ROWS[:4]), atol=1e-5)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"data": {"ndarray": [[1.0, 2.0]]}}, "InvalidShape"),
        ({"data": {"ndarray": [["x"] * 64]}}, "InvalidInput"),
    ],
)
def test_seldon_answers_bad_input_with_a_4xx_and_the_reason(seldon: str, payload: dict, reason: str) -> None:
    code, answer = call(seldon, "/api/v1.0/predictions", payload)
    assert code == 400 and answer["status"]["reason"] == reason
    assert call(seldon, "/health/ping")[0] == 200

"""Lathe's model server as its own process on a free loopback port, for the tests that call it over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT, eventually
from tests.servers.process import free_port


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def model_server(model_dir: Path, log: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m lathe_serving`` on ``model_dir`` with ``args`` (its log in ``log``): its URL once it is ready,
    and the process; stopped on the way out."""
    port = free_port()
    command = [sys.executable, "-m", "lathe_serving", "--model-dir", str(model_dir)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=out,
            stderr=out,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT / "serving"), os.environ.get("PYTHONPATH", "")]),
            },
        )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _ready(url), timeout=60)
        yield url, process
    finally:
        process.terminate()
        process.wait(30)

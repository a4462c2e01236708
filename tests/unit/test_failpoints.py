"""Failpoints: an unknown name stops the operator at start-up; an armed point kills the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.conftest import ROOT

CODE = "from lathe_operator import failpoints; failpoints.hit('dataset.ingest-started'); print('passed')"


def run(armed: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LATHE_FAILPOINTS": armed,
        "PYTHONPATH": str(ROOT / "operator") + os.pathsep + str(ROOT / "core"),
    }
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=60)


def test_armed_points_kill_and_others_pass() -> None:
    assert run("").stdout.strip() == "passed"
    assert run("training-run.submitted").stdout.strip() == "passed"
    assert run("dataset.ingest-started").returncode == -signal.SIGKILL
    unknown = run("dataset.typo")
    assert unknown.returncode == 1 and "unknown points" in unknown.stderr

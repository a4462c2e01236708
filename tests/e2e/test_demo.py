"""The local demo as a test: `make demo` from ingest to a retrained model promoted on drift.

It runs hack/demo.py as a user does and checks what the summary says: the model trained,
served, canaried and promoted, the drift found in the darker traffic, the retrain promoted,
and the promoted version answering the darker digits better than the one before it.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


def test_the_demo_closes_the_loop_from_drift_to_a_promoted_model() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "hack/demo.py")], capture_output=True, text=True, timeout=1500, cwd=ROOT
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "CanaryPromoted" in out and "DriftDetected" in out, out[-6000:]
    assert "retrain: Promoted" in out, out[-6000:]
    live = re.search(r"Live accuracy on darker digits, by the version that answered: (.*)", out)
    assert live is not None, out[-6000:]
    rates = {v: float(r) for v, r in re.findall(r"(\d+): \d+ requests, ([\d.]+)% right", live.group(1))}
    assert set(rates) >= {"2", "3"}, live.group(1)
    assert rates["3"] > rates["2"], live.group(1)  # the retrained version reads the darker digits better
    assert re.search(r"Version 3 promoted to 100%: candidate \d+ requests.*; stable \d+ requests", out), out[-6000:]

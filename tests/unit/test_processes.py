"""Local runs found again by a restarted operator: running ones are not started twice, ended ones say so."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from lathe_operator.backends.processes import LocalProcesses

SLEEP = [sys.executable, "-c", "import time; print('working', flush=True); time.sleep(60)"]


def test_a_restarted_operator_finds_the_run_instead_of_starting_it_again(tmp_path: Path) -> None:
    before = LocalProcesses(tmp_path)
    assert before.start("ml/ingest-1", SLEEP, dict(os.environ))
    pid = before.runs["ml/ingest-1"][0].pid
    after = LocalProcesses(tmp_path)  # the operator restarted: its process table is gone
    assert after.state("ml/ingest-1").phase == "Running"
    assert not after.start("ml/ingest-1", SLEEP, dict(os.environ))
    os.kill(pid, signal.SIGKILL)
    before.runs["ml/ingest-1"][0].wait(10)  # reaped, as init reaps an orphan
    ended = after.state("ml/ingest-1")
    assert (
        ended.phase == "Failed" and "ended while the operator was away" in ended.message and "working" in ended.message
    )
    log = (tmp_path / "ml-ingest-1.log").read_text()
    assert log.count("--- started") == 1
    assert after.state("ml/other").phase == "Absent"


def test_a_reused_pid_is_not_the_run(tmp_path: Path) -> None:
    (tmp_path / "ml-train-1.pid").write_text(json.dumps({"pid": os.getpid(), "argv": SLEEP}))
    assert LocalProcesses(tmp_path).state("ml/train-1").phase == "Failed"  # this pid runs pytest, not the run

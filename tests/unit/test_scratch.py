"""Scratch directories a killed run left behind go with the next run; a live run's stay."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lathe_pipelines.steps import scratch


def test_a_dead_processs_scratch_is_cleared_a_live_ones_kept(tmp_path: Path) -> None:
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    dead = tmp_path / f"lathe-ingest-{dead_pid.pid}-abc"
    (dead / "data.parquet").parent.mkdir()
    (dead / "data.parquet").write_bytes(b"x" * 10)
    live = tmp_path / f"lathe-ingest-{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / "lathe-validate-1-ghi"  # another prefix: not this call's
    other.mkdir()
    made = scratch.directory("lathe-ingest-", str(tmp_path))
    assert not dead.exists() and live.is_dir() and other.is_dir()
    assert made.is_dir() and made.name.startswith(f"lathe-ingest-{os.getpid()}-")

"""Child processes of the operator, found again by key: local mode's stand-in for Jobs and pipeline pods."""

from __future__ import annotations

import tempfile
from pathlib import Path
from subprocess import Popen

from lathe_core.runs import RunState

from ..config import Config


def runs_dir(config: Config) -> Path:
    """Local runs' logs: ``<LATHE_LOCAL_DIR>/.runs/<namespace>-<run>.log`` (no namespace starts with a dot)."""
    return Path(config.local_dir) / ".runs"


class LocalProcesses:
    """A process table. A restarted operator forgets it; callers make reruns harmless (reports, content addresses)."""

    def __init__(self, work: Path | None = None) -> None:
        self.work = work or Path(tempfile.mkdtemp(prefix="lathe-runs-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.runs: dict[str, tuple[Popen[bytes], Path]] = {}

    def path(self, key: str, suffix: str) -> Path:
        """``key`` is ``<namespace>/<run>``."""
        return self.work / f"{key.replace('/', '-')}.{suffix}"

    def start(self, key: str, argv: list[str], env: dict[str, str]) -> bool:
        if key in self.runs:
            return False
        log = self.path(key, "log")
        with open(log, "wb") as out:
            self.runs[key] = (Popen(argv, stdout=out, stderr=out, env=env), log)
        return True

    def state(self, key: str) -> RunState:
        entry = self.runs.get(key)
        if entry is None:
            return RunState("Absent")
        process, log = entry
        code = process.poll()
        if code is None or code == 0:  # exited 0: its report is in the store for the next look
            return RunState("Running")
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        return RunState("Failed", message=f"exit code {code}: {' | '.join(tail)}")

"""Child processes of the operator, found again by key: local mode's stand-in for Jobs and pipeline pods.

Each run writes ``<key>.pid`` beside its log, so an operator that restarts while a run is going finds it
(alive, not a zombie, the same command) instead of starting it a second time, as a Job would be found
by name. The log is appended to, one ``--- started`` line per start: what ran, and how often.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from subprocess import Popen

from lathe_core.runs import RunState

from ..config import Config


def runs_dir(config: Config) -> Path:
    """Local runs' logs: ``<LATHE_LOCAL_DIR>/.runs/<namespace>-<run>.log`` (no namespace starts with a dot)."""
    return Path(config.local_dir) / ".runs"


def _running(pid: int, argv: list[str]) -> bool:
    """Alive, not a zombie, and running ``argv`` (a reused pid runs something else)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z" and [part.decode(errors="replace") for part in cmdline] == argv


class LocalProcesses:
    """A process table, kept on disk so a restarted operator knows the runs it started before."""

    def __init__(self, work: Path | None = None) -> None:
        self.work = work or Path(tempfile.mkdtemp(prefix="lathe-runs-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.runs: dict[str, tuple[Popen[bytes], Path]] = {}

    def path(self, key: str, suffix: str) -> Path:
        """``key`` is ``<namespace>/<run>``."""
        return self.work / f"{key.replace('/', '-')}.{suffix}"

    def start(self, key: str, argv: list[str], env: dict[str, str]) -> bool:
        if key in self.runs or self._earlier(key) is not None:
            return False
        log = self.path(key, "log")
        with open(log, "ab") as out:
            out.write(f"--- started {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(argv[-3:])}\n".encode())
            out.flush()
            self.runs[key] = (Popen(argv, stdout=out, stderr=out, env=env), log)
        self.path(key, "pid").write_text(json.dumps({"pid": self.runs[key][0].pid, "argv": argv}))
        return True

    def state(self, key: str) -> RunState:
        entry = self.runs.get(key)
        if entry is None:
            return self._earlier(key) or RunState("Absent")
        process, log = entry
        code = process.poll()
        if code is None or code == 0:  # exited 0: its report is in the store for the next look
            return RunState("Running")
        return RunState("Failed", message=f"exit code {code}: {self._tail(log)}")

    def _earlier(self, key: str) -> RunState | None:
        """A run an earlier operator started: Running while its process lives; once it is gone, Running too
        when it wrote its report (callers read reports first), else Failed with its log's last lines."""
        try:
            started = json.loads(self.path(key, "pid").read_text())
        except (OSError, ValueError):
            return None
        if _running(int(started["pid"]), list(started["argv"])):
            return RunState("Running")
        log = self.path(key, "log")
        return RunState("Failed", message=f"ended while the operator was away: {self._tail(log)}")

    @staticmethod
    def _tail(log: Path) -> str:
        try:
            return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return "no log"

"""``--workers N``: the first process forks N workers on one port and watches them.

``lathe_serving.main`` builds a ``Supervisor`` around its one-worker ``serve``; this module knows nothing of
serving beyond the shared Prometheus folder. The supervisor passes SIGTERM, SIGINT and SIGHUP on, restarts a
worker that exits (backing off while they exit quickly), and gives up after five quick failures in a row.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from typing import NoReturn

QUICK = 10  # seconds: a worker that exits sooner failed to start, rather than failed after serving
GIVE_UP = 5  # quick failures in a row
log = logging.getLogger("lathe_serving")


class Supervisor:
    """Runs ``work`` in ``workers`` forked processes until told to stop; ``run`` returns the exit code."""

    def __init__(self, workers: int, work: Callable[[], object]) -> None:
        self.workers, self.work = workers, work
        self.children: set[int] = set()
        self.started: dict[int, float] = {}
        self.failures = 0
        self.stopping = False
        self.exit_code = 0
        self.metrics_dir = ""

    def run(self) -> int:
        """Fork the workers, reap them until none is left, clean up the shared metrics folder."""
        self.metrics_dir = tempfile.mkdtemp(prefix="lathe-serving-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.forward)
        for _ in range(self.workers):
            self.fork()
        try:
            while self.children:
                self.reaped(*os.wait())
        finally:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return self.exit_code

    def fork(self) -> None:
        pid = os.fork()
        if pid == 0:
            self._work()
        self.children.add(pid)
        self.started[pid] = time.monotonic()

    def _work(self) -> NoReturn:
        """In the child: run the work, then exit without returning into the supervisor's loop."""
        code = 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()
        try:
            self.work()
        except BaseException:  # noqa: BLE001  (the traceback goes to the log, then the worker exits)
            log.exception("Worker %d failed", os.getpid())
            code = 1
        finally:
            os._exit(code)

    def forward(self, sig: int, _: object) -> None:
        """Signal handler: pass the signal on to every worker; TERM and INT also mean no more restarts."""
        self.stopping = self.stopping or sig in (signal.SIGTERM, signal.SIGINT)
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # exited a moment ago; the wait loop reaps it

    def reaped(self, pid: int, status: int) -> None:
        """A worker exited: drop its metrics, then restart it (backing off if it was quick) or give up."""
        self.children.discard(pid)
        # Imported only now, in the supervisor: prometheus_client picks its value class from
        # PROMETHEUS_MULTIPROC_DIR when first imported, and forked workers inherit that choice.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.metrics_dir)
        if self.stopping:
            return
        quick = time.monotonic() - self.started.pop(pid, 0.0) < QUICK
        self.failures = self.failures + 1 if quick else 0
        if self.failures >= GIVE_UP:  # it cannot even start: exit, so whoever supervises us sees it and says why
            log.error("Workers keep failing at start; stopping")
            self.forward(signal.SIGTERM, None)
            self.stopping = True
            self.exit_code = 1
            return
        log.warning("Worker %d exited (status %d); started another", pid, status)
        time.sleep(min(2**self.failures, 10) if quick else 0)
        self.fork()


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the supervisor dies, even by SIGKILL, so no orphan keeps the port."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

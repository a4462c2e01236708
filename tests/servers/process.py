"""Start, wait for, and stop a server process; free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CACHE = Path(os.environ.get("LATHE_CACHE", Path.home() / ".cache" / "lathe"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_address() -> str:
    """The first global IPv4 address (not loopback, not the pod bridge): the kubelet's --node-ip."""
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in shown.stdout.splitlines():
        fields = line.split()
        if fields[1] != "lathe0":  # the test node's pod bridge
            return fields[3].split("/")[0]
    raise RuntimeError("the node needs a non-loopback IPv4 address (the kubelet refuses a loopback node IP)")


def binary(relative: str) -> Path:
    """A cached binary, or a clear error naming the script that builds it."""
    path = CACHE / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make tools` (hack/setup.sh) first")
    return path


class Process:
    """A child process with its log in a file; stop() by PID, TERM then KILL."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_until(self, check: Callable[[], bool], timeout: float) -> None:
        """Poll ``check`` until it holds; fail with the log tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self, grace: float = 10) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()

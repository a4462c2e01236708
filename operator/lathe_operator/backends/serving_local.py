"""Local mode's stand-in for Seldon: one ``lathe_serving`` process per ModelDeployment on loopback.

Everything lives under ``<work>/<namespace>/<name>/``: the model versions copied from
the registry, ``deployment.json`` (versions, traffic, shadow, logging) and
``server.json`` (pid and port). A restarted operator finds the running server through
``server.json`` and keeps it: serving never stops because the operator did. A server
that died is started again on its old port, and the deployment's message says how often and
how the last one died; one that dies within ``QUICK`` seconds ``GIVE_UP`` times in a row
(a model it refuses to load, a port taken) reads Failed with the last line of its log, and is
tried again with back-off. A changed split is sent with SIGHUP and counts as applied once the
server reports the new file's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path
from subprocess import Popen
from typing import Any

from lathe_core import layout
from lathe_core.store import ObjectStore

QUICK = 10.0  # seconds: a server that dies sooner failed to start
GIVE_UP = 3  # quick deaths in a row before the deployment reads Failed (tries go on, with back-off)


def _free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            # As the server binds (aiohttp sets SO_REUSEADDR): a port whose dead server left connections
            # in TIME_WAIT is free for it, and clients keep their endpoint.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port")


class LocalServing:
    def __init__(self, store: ObjectStore, work: Path, env: dict[str, str]) -> None:
        self.store, self.work, self.env = store, work, env
        self.children: dict[int, Popen[bytes]] = {}

    def folder(self, namespace: str, name: str) -> Path:
        return self.work / namespace / name

    def apply(
        self,
        namespace: str,
        name: str,
        model: str,
        versions: list[int],
        traffic: list[tuple[int, int]],
        shadow: int | None,
        sample_rate: float,
        workers: int = 1,
        checksums: dict[int, str] | None = None,
    ) -> tuple[str, str, str | None]:
        """Make the server serve this split of ``model``'s ``versions``; (state, message, endpoint).

        ``workers`` (server processes on the port) changes by restarting the server on the same port."""
        folder = self.folder(namespace, name)
        recorded = {str(v): checksums[v] for v in versions if checksums and v in checksums}
        for version in versions:
            self._fetch(folder / "models" / str(version), namespace, model, version)
        body = {
            "namespace": namespace,
            "deployment": name,
            "models": {str(v): str(folder / "models" / str(v)) for v in sorted(versions)},
            "traffic": {str(v): p for v, p in traffic},
            "shadow": shadow,
            "logging": {"sampleRate": sample_rate},
            **({"checksums": recorded} if recorded else {}),
        }
        raw = json.dumps(body, sort_keys=True).encode()
        config = folder / "deployment.json"
        changed = not config.exists() or config.read_bytes() != raw
        if changed:
            _write(config, raw)
        server = self._server(folder)
        if server is not None and self._alive(server["pid"], config) and server.get("workers", 1) != workers:
            self._stop(server, config)
            server["pid"] = None  # stopped on purpose: not a death
        if server is None or not self._alive(server["pid"], config):
            if server is not None and server["pid"]:
                server = self._died(folder, server)
            if server is not None and server.get("quick", 0) >= GIVE_UP and time.time() < server["retryAt"]:
                return "Failed", _failing(server, folder), f"http://127.0.0.1:{server['port']}/api/v1.0/predictions"
            server = self._start(folder, config, server or {}, workers)
        elif changed:
            os.kill(server["pid"], signal.SIGHUP)
        endpoint = f"http://127.0.0.1:{server['port']}/api/v1.0/predictions"
        status = self._status(server["port"])
        if status is None:
            return "Creating", f"model server (pid {server['pid']}) is starting on port {server['port']}", endpoint
        if status.get("config") != hashlib.sha256(raw).hexdigest()[:16]:
            if not changed:  # a lost or failed reload: ask again (the server keeps serving the old split)
                os.kill(server["pid"], signal.SIGHUP)
            return "Creating", "model server is loading the new split (see server.log if this persists)", endpoint
        if server.get("quick"):
            server["quick"] = 0  # it started: deaths from now on are not start-up failures
            _write(folder / "server.json", json.dumps(server).encode())
        return "Available", f"model server pid {server['pid']} on port {server['port']}", endpoint

    def restarts(self, namespace: str, name: str) -> str:
        """How often the server died and was started again, and how the last one died; empty when never."""
        server = self._server(self.folder(namespace, name)) or {}
        count, last = server.get("restarts", 0), server.get("last") or {}
        if not count:
            return ""
        return f"server restarted {count} time{'s' if count > 1 else ''}, last after it {last.get('how')} at {last.get('at')}"

    def remove(self, namespace: str, name: str) -> None:
        folder = self.folder(namespace, name)
        server = self._server(folder)
        config = folder / "deployment.json"
        if server is not None and self._alive(server["pid"], config):
            self._stop(server, config)
        shutil.rmtree(folder, ignore_errors=True)
        self._publish_targets()

    def targets(self) -> list[str]:
        """host:port of every local server, for Prometheus file-based discovery."""
        found = []
        for path in sorted(self.work.glob("*/*/server.json")):
            found.append(f"127.0.0.1:{json.loads(path.read_text())['port']}")
        return found

    def _fetch(self, target: Path, namespace: str, model: str, version: int) -> None:
        if (target / layout.CARD).exists():
            return  # versions are immutable; model.json is copied last
        target.mkdir(parents=True, exist_ok=True)
        for file in (layout.ONNX, layout.CARD):
            _write(target / file, self.store.get(layout.model_file(namespace, model, version, file)))

    def _server(self, folder: Path) -> dict[str, Any] | None:
        path = folder / "server.json"
        return dict(json.loads(path.read_text())) if path.exists() else None

    def _stop(self, server: dict[str, Any], config: Path) -> None:
        os.kill(server["pid"], signal.SIGTERM)
        child = self.children.pop(server["pid"], None)
        if child is not None:
            child.wait(30)
        else:  # an earlier operator's: wait for the port to be released
            for _ in range(300):
                if not self._alive(server["pid"], config):
                    break
                time.sleep(0.1)

    def _died(self, folder: Path, server: dict[str, Any]) -> dict[str, Any]:
        """Record how the server died (once: its pid is cleared) and when to try again."""
        child = self.children.pop(server["pid"], None)
        code = child.returncode if child is not None else None
        how = f"killed by signal {-code}" if code and code < 0 else f"exited with code {code}" if code else "exited"
        quick = server.get("quick", 0) + 1 if time.time() - server.get("started", 0) < QUICK else 0
        back_off = min(300, 5 * 2 ** (quick - GIVE_UP)) if quick >= GIVE_UP else 0
        last = {"how": how, "at": time.strftime("%H:%M:%S"), "log": _last_line(folder / "server.log")}
        server = {**server, "pid": None, "restarts": server.get("restarts", 0) + 1, "quick": quick, "last": last}
        server["retryAt"] = time.time() + back_off
        _write(folder / "server.json", json.dumps(server).encode())
        return server

    def _start(self, folder: Path, config: Path, before: dict[str, Any], workers: int) -> dict[str, Any]:
        port = _free_port(before.get("port"))
        with open(folder / "server.log", "ab") as log:
            child = Popen(
                [
                    sys.executable,
                    "-m",
                    "lathe_serving",
                    "--config",
                    str(config),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                stdout=log,
                stderr=log,
                env=self.env,
                start_new_session=True,
            )
        self.children[child.pid] = child
        server = {**before, "pid": child.pid, "port": port, "workers": workers, "started": time.time()}
        _write(folder / "server.json", json.dumps(server).encode())
        self._publish_targets()
        return server

    def _publish_targets(self) -> None:
        """``<work>/prometheus-targets.json`` for a Prometheus ``file_sd_configs`` entry."""
        groups = [{"targets": self.targets(), "labels": {"job": "lathe-serving"}}]
        _write(self.work / "prometheus-targets.json", json.dumps(groups).encode())

    def _alive(self, pid: int | None, config: Path) -> bool:
        if not pid:
            return False
        child = self.children.get(pid)
        if child is not None:
            return child.poll() is None
        try:  # started by an earlier operator: alive, not a zombie, and this deployment's server (not a reused pid)
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return stat.split(") ", 1)[1][:1] != "Z" and b"lathe_serving" in cmdline and str(config).encode() in cmdline

    def _status(self, port: int) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/status", timeout=2) as response:
                return dict(json.load(response))
        except (OSError, ValueError):
            return None


def _failing(server: dict[str, Any], folder: Path) -> str:
    last = server.get("last") or {}
    wait = max(0, round(server["retryAt"] - time.time()))
    return (
        f"model server failed to start {server['quick']} times in a row ({last.get('how')}): "
        f"{last.get('log') or 'nothing in its log'}; next try in {wait} s ({folder / 'server.log'})"
    )


def _last_line(log: Path) -> str:
    """The last line the server wrote (a failed start ends with its exception), cut short."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:400] if lines else ""


def _write(path: Path, data: bytes) -> None:
    """Whole file or nothing: write aside, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)

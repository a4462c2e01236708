"""Headless Chromium driven over the DevTools protocol: load a page, collect its errors, take a screenshot.

Errors are what a person would see go wrong: a script exception, a console error, a
resource that failed to load, and any request that leaves the page's own file (a report
must be self-contained).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.servers.process import free_port


@dataclass
class PageLoad:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""


def _target(port: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                pages = [t for t in json.load(response) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium's DevTools endpoint did not come up")
        time.sleep(0.2)


async def _drive(url: str, page: Path, width: int, height: int, timeout: float) -> PageLoad:
    found, ids = PageLoad(), iter(range(1, 10_000))
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=64 << 20) as ws:

        async def call(method: str, **params: Any) -> int:
            number = next(ids)
            await ws.send_json({"id": number, "method": method, "params": params})
            return number

        setup = {await call(f"{domain}.enable") for domain in ("Page", "Runtime", "Log", "Network")}
        setup.add(
            await call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
        )
        async with asyncio.timeout(timeout):  # every domain on before the page loads, or its events are lost
            async for message in ws:
                setup.discard(json.loads(message.data).get("id"))
                if not setup:
                    break
        await call("Page.navigate", url=page.as_uri())
        shot = None
        async with asyncio.timeout(timeout):
            async for message in ws:
                event = json.loads(message.data)
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.exceptionThrown":
                    found.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    found.errors.append(f"console: {params['entry']['text']}")
                elif method == "Network.loadingFailed" and not params.get("canceled"):
                    found.errors.append(f"load failed: {params.get('errorText')}")
                elif method == "Network.requestWillBeSent":
                    found.requests.append(params["request"]["url"])
                elif method == "Page.loadEventFired" and shot is None:
                    await asyncio.sleep(0.3)  # late console messages
                    shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                elif shot is not None and event.get("id") == shot:
                    found.screenshot = base64.b64decode(event["result"]["data"])
                    break
    return found


def load(page: Path, width: int = 1200, height: int = 900, timeout: float = 60) -> PageLoad:
    """Open ``page`` (a local file) in a fresh headless Chromium and report what happened."""
    executable = shutil.which("chromium")
    if executable is None:
        raise FileNotFoundError("chromium is missing: run `make tools` (hack/install-prometheus.sh installs it)")
    port, profile = free_port(), tempfile.mkdtemp(prefix="lathe-chromium-")
    argv = [
        executable,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--remote-debugging-port={port}",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    # Its own process group: Debian's chromium is a wrapper script, and the browser it starts forks renderers.
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = _target(port, time.monotonic() + timeout)
        return asyncio.run(_drive(url, page, width, height, timeout))
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
                process.wait(10)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        shutil.rmtree(profile, ignore_errors=True)

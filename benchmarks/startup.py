"""How long the real test servers take to start once built, against the 30 s budget.

    make tools && $(hack/venv.sh)/bin/python benchmarks/startup.py

Starts etcd + kube-apiserver + kube-controller-manager, S3Proxy and Prometheus the way
the test fixtures do, first one after another, then all at once, and prints seconds and
the ratio to the budget.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers.controlplane import ControlPlane  # noqa: E402
from tests.servers.prometheus import Prometheus  # noqa: E402
from tests.servers.s3 import S3Server  # noqa: E402

BUDGET = 30.0


def timed(factory):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    server = factory().start()
    return server, time.monotonic() - started


def main() -> None:
    servers = []
    total = 0.0
    print(f"{'server':<28}{'seconds':>9}")
    for name, factory in (
        ("control plane (etcd+apiserver)", ControlPlane),
        ("S3Proxy", S3Server),
        ("Prometheus", Prometheus),
    ):
        server, seconds = timed(factory)
        servers.append(server)
        total += seconds
        print(f"{name:<28}{seconds:>9.2f}")
    for server in servers:
        server.stop()
    print(f"{'one after another':<28}{total:>9.2f}   {total / BUDGET:.2f}x of the {BUDGET:.0f} s budget")
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        running = [f.result()[0] for f in [pool.submit(timed, k) for k in (ControlPlane, S3Server, Prometheus)]]
    together = time.monotonic() - started
    for server in running:
        server.stop()
    print(f"{'all at once':<28}{together:>9.2f}   {together / BUDGET:.2f}x of the {BUDGET:.0f} s budget")


if __name__ == "__main__":
    main()

"""The operator at scale: N Datasets and N TrainingRuns against the real test API server, to convergence.

    V=$(hack/venv.sh); PYTHONPATH=$PWD/core:$PWD/operator:$PWD/pipelines:$PWD/serving:$PWD \\
        $V/bin/python benchmarks/operator_scale.py [--sizes 100,300,1000] [--timeout 300]

Starts the test control plane (etcd, kube-apiserver, kube-controller-manager) with the
CRDs applied, as tests/integration/conftest.py does; then for each N, in a fresh
namespace, the fake KFP API (tests/servers/kfp_fake.py) and ``python -m lathe_operator
operator`` as the fixtures' ``OperatorProcess`` runs it, set up as the chart deploys it:
ingest runs as Jobs, TrainingRuns on the KFP backend (here the fake), a file store
(benchmarks/scale_cluster.py). It creates N Datasets and N TrainingRuns (the examples,
numbered; run i trains on Dataset i) and watches them until every Dataset is
Ready/Published and every TrainingRun Ready/Registered, or --timeout plus one second
per N has passed.

No node runs pods here and the fake KFP API runs nothing, so the benchmark plays the
cluster's part, at once, when a status says a run started (benchmarks/scale_objects.py):
it writes the ingest Job's report to the store; it moves the KFP run to RUNNING, writes
the report the pipeline's register step writes, and moves the run to SUCCEEDED.
Everything else, including finding those reports on its own polls (every 5 s for a
running ingest, every 10 s for a TrainingRun), is the operator's work.

Per N: status changes seen through the watch per second, from the first create until the
last object settled (and in the busiest 5 s), time to converge, the operator's peak RSS
(VmHWM, and VmRSS sampled) and CPU time, its CPU share over 10 s once all has settled,
reconciles and errors from its metrics and log; then growth against the smallest N, and
the issue's targets with PASS or MISS (benchmarks/scale_report.py). Exits non-zero only
when the operator or the benchmark crashed, never on a missed target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes import client  # noqa: E402

from benchmarks import scale_cluster as cluster  # noqa: E402
from benchmarks import scale_report as report  # noqa: E402
from benchmarks.scale_objects import SETTLED, Player, Tracker  # noqa: E402
from lathe_core.settings import StoreSettings  # noqa: E402
from lathe_core.stores import open_store  # noqa: E402
from tests.integration.conftest import OperatorProcess  # noqa: E402
from tests.servers.controlplane import ControlPlane  # noqa: E402
from tests.servers.kfp_fake import FakeKfp  # noqa: E402


def wait_settled(tracker: Tracker, operator: OperatorProcess, n: int, timeout: float) -> bool:
    """Until all 2n objects settled (True), the operator exited or the time ran out."""
    deadline = time.monotonic() + timeout
    while len(tracker.settled) < 2 * n:
        if operator.popen.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def measure(
    api: client.ApiClient, namespace: str, n: int, timeout: float, operator: OperatorProcess, kfp: FakeKfp
) -> dict:
    """Create the objects, follow them until they settle, and read the operator's memory and CPU."""
    pid = operator.popen.pid
    sampler = report.Sampler(pid).start()
    idle_rss = report.proc_kib(pid, "VmRSS")
    store = open_store(StoreSettings(uri=f"file://{operator.log.parent / 'store'}"))  # OperatorProcess's store
    player = Player(store, kfp)
    tracker = Tracker(api, namespace, player).start()
    started, cpu_before = time.monotonic(), report.cpu_seconds(pid)
    try:
        cluster.create_all(api, namespace, n)
        created = time.monotonic() - started
        done = wait_settled(tracker, operator, n, timeout)
        settled, changes = tracker.snapshot()
        converged = (max(settled.values()) if done else time.monotonic()) - started  # else a lower bound
        cpu_run = report.cpu_seconds(pid) - cpu_before
        idle_cpu = float("nan")
        if operator.popen.poll() is None:
            before = report.cpu_seconds(pid)
            time.sleep(report.SETTLED_WINDOW)
            idle_cpu = (report.cpu_seconds(pid) - before) / report.SETTLED_WINDOW
        crashed = operator.popen.poll() is not None
        hwm = report.proc_kib(pid, "VmHWM")  # 0 once it is gone: the sampler's peak stands
    finally:
        sampler.stop()
        tracker.stop()
    last = {p: max((t for (k, _), t in settled.items() if k == p), default=None) for p in SETTLED}
    kinds = {p: None if t is None else t - started for p, t in last.items()}
    return {
        "done": done,
        "crashed": crashed,
        "created": created,
        "converged": converged,
        "kinds": kinds,
        "settled": len(settled),
        "changes": len(changes),
        "busiest": report.busiest(changes),
        "kind_changes": {p: sum(1 for _, k, _ in changes if k == p) for p in SETTLED},
        "flips": sum(1 for _, _, flipped in changes if flipped),
        "idle_rss_mb": idle_rss * 1024 / 1e6,
        "peak_rss_mb": max(hwm, sampler.peak) * 1024 / 1e6,
        "cpu": cpu_run,
        "idle_cpu": idle_cpu,
        "reasons": tracker.reasons(),
        "watch_errors": tracker.errors,
        "kfp_runs": len(kfp.runs),
        "pipelines": dict(player.pipelines),
    }


def run_size(plane: ControlPlane, api: client.ApiClient, n: int, timeout: float) -> dict:
    """One size in its own namespace, with its own fake KFP API and operator process."""
    work = Path(tempfile.mkdtemp(prefix=f"lathe-scale-{n}-"))
    namespace = cluster.make_namespace(api, n)
    kfp = FakeKfp().start()
    try:
        operator, port = cluster.start_operator(plane, namespace, work, kfp)
        try:
            result = measure(api, namespace, n, timeout, operator, kfp)
            result["metrics"] = cluster.metrics(port)
        finally:
            stopped = cluster.stop_operator(operator)
    finally:
        kfp.stop()
        cluster.drop_namespace(api, namespace)
    exit_code = operator.popen.returncode if result["crashed"] else None
    return {"n": n, "namespace": namespace, "log": operator.log, "exit": exit_code, "stopped": stopped, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,300,1000", help="comma-separated N (Datasets, and as many runs)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to converge, plus one per N")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start")
    plane, api = cluster.start_plane()
    results, failed = [], []
    try:
        for n in sizes:
            try:
                results.append(run_size(plane, api, n, args.timeout + n))
            except Exception:  # the benchmark's own failure at this size: the others still count
                traceback.print_exc()
                failed.append(n)
                continue
            report.progress(results[-1])
    finally:
        plane.stop()
    if results:
        report.table(results)
    if failed:
        print(f"\nThe benchmark failed at N={failed} (traceback above)")
    return 1 if failed or any(r["crashed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

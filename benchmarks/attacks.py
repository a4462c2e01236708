"""The security review's attacks on a model server and on the drift check, with the memory they cost.

    $(hack/venv.sh)/bin/python benchmarks/attacks.py [--requests 20]

1. Feedback amplification: a Lathe model server (one worker, logging every request to a local store)
   gets ``--requests`` feedback bodies, each with a 100,000-character ``puid`` and 10,000 truth rows.
   Reported: the server's peak RSS before and after the flood (VmHWM), what each body got back, the
   bytes the server stored, and the peak memory of reading those logs back as the drift check does.
2. One long category: the drift check's categorical column over 2,000 logged rows, one of which holds a
   4 MB text value, in a child process capped at 8 GiB of address space (a fixed-width array would be
   rows x longest value x 4 bytes: 32 GB). Reported: the outcome and the child's peak RSS.

Each figure comes from this run, on this machine; nothing is compared with a stored number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / p) for p in ("core", "pipelines", "serving")]


def make_model(directory: Path) -> None:
    from lathe_pipelines.sample_data import digits
    from lathe_pipelines.steps.classifier import train
    from lathe_pipelines.steps.export import export
    from lathe_pipelines.steps.split import split

    parts = split(digits().iloc[:300], "label", 5)
    trained = train(parts.x_train, parts.y_train, parts.x_val, parts.y_val, 10, "mlp", {"epochs": 1, "hidden": [8]}, 5)
    digest = export(trained.model, 64, directory / "model.onnx")
    card = {"name": "digits", "version": 1, "sha256": digest, "columns": {"classes": parts.classes}}
    (directory / "model.json").write_text(json.dumps(card))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()[:160].decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:160].decode()


def start_server(model: Path, store: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("core", "serving")),
        "LATHE_STORE_URI": f"file://{store}",
        "LATHE_NAMESPACE": "ml",
        "SELDON_DEPLOYMENT_ID": "digits",
    }
    command = [sys.executable, "-m", "lathe_serving", "--model-dir", str(model), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--sample-rate", "1"], env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).close()
            return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit("the model server did not start")


def feedback_flood(requests: int) -> dict[str, object]:
    from lathe_core.store_local import LocalStore
    from lathe_pipelines.drift import window

    with tempfile.TemporaryDirectory() as work:
        model, store = Path(work) / "model", Path(work) / "store"
        model.mkdir()
        make_model(model)
        port = 19000 + os.getpid() % 1000
        server = start_server(model, store, port)
        try:
            row = {"data": {"ndarray": [[0.0] * 64]}, "meta": {"puid": "served-1"}}
            post(f"http://127.0.0.1:{port}/api/v1.0/predictions", json.dumps(row).encode())
            before = peak_rss_mib(server.pid)
            body = json.dumps(
                {"response": {"meta": {"puid": "x" * 100_000}}, "truth": {"data": {"ndarray": [1] * 10_000}}}
            ).encode()
            answers = [post(f"http://127.0.0.1:{port}/api/v1.0/feedback", body) for _ in range(requests)]
            time.sleep(6)  # the sink flushes every 5 s
            after = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(30)
        stored = sum(f.stat().st_size for f in store.rglob("*.parquet"))
        started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        table = window.read_logs(LocalStore(str(store)), "ml", "digits", now - timedelta(hours=1), now)
        window.from_logs(table, [f"pixel_{i}" for i in range(64)])
        read_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    codes = sorted({code for code, _ in answers})
    return {
        "feedback bodies": requests,
        "body bytes": len(body),
        "answers (status codes)": codes,
        "first answer": answers[0][1],
        "server peak RSS before, MiB": round(before),
        "server peak RSS after, MiB": round(after),
        "log bytes stored": stored,
        "reader's peak RSS growth, MiB": round(read_peak - started),
    }


CATEGORY_CHILD = """
import resource, sys, numpy as np
resource.setrlimit(resource.RLIMIT_AS, (__LIMIT__, __LIMIT__))
from lathe_pipelines.drift import check
from lathe_pipelines.drift.reference import Categorical
values = np.asarray(["a", "b"] * (__ROWS__ // 2), dtype=object)
values[0] = "z" * (4 << 20)
try:
    column = check._column("colour", Categorical({"a": 1000, "b": 1000}), values, check.choose("categorical", "colour", {}, {}))
    outcome = f"{column.status}: {column.test}={column.statistic:.3f}, drifted={column.drifted}"
except MemoryError:
    outcome = "MemoryError"
peak = [int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(f"{outcome}|{peak}")  # VmHWM, not ru_maxrss: that one keeps the parent's peak across fork and exec
"""


def long_category(rows: int = 2_000, limit_gib: int = 8) -> dict[str, object]:
    """The drift check's categorical column (``check._column``, what a check runs) in a child process whose
    address space is capped, so a fixed-width array fails there with MemoryError instead of taking the machine."""
    code = CATEGORY_CHILD.replace("__LIMIT__", str(limit_gib << 30)).replace("__ROWS__", str(rows))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("core", "pipelines"))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    outcome, _, peak = (done.stdout.strip().splitlines() or ["failed|0"])[-1].partition("|")
    return {
        "rows": rows,
        "longest value, bytes": 4 << 20,
        "fixed-width array would take, GiB": round(rows * (4 << 20) * 4 / 2**30, 1),
        "address-space limit, GiB": limit_gib,
        "outcome": outcome if done.returncode == 0 else f"exit {done.returncode}: {done.stderr[-200:]}",
        "peak RSS, MiB": int(peak or 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps({"feedback flood": feedback_flood(args.requests), "long category": long_category()}, indent=1))


if __name__ == "__main__":
    main()

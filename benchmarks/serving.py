"""Lathe's model server vs the seldon-core microservice, same model, same machine, one run, measured with wrk.

    $(hack/venv.sh)/bin/python benchmarks/serving.py [--seconds 8] [--connections 1,8,64] [--lathe-only]

Servers: Lathe (aiohttp on uvloop + orjson + micro-batching; with workers = cores, and one
process), seldon-core-microservice
with its defaults (one gunicorn worker) and with ``--workers`` set to the core count, all
serving the same LatheModel class on loopback. Each gets one-row Seldon requests from wrk
(one thread) at each connection count. The floor is raw in-process onnxruntime calls/s on
one row. Targets at 8 connections: Lathe >= 10x Seldon (defaults) and >= 5x Seldon
(workers = cores), with p99 under 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / p) for p in ("core", "pipelines", "serving")]


def make_model(directory: Path) -> np.ndarray:
    from lathe_pipelines.sample_data import digits
    from lathe_pipelines.steps.classifier import train
    from lathe_pipelines.steps.export import export
    from lathe_pipelines.steps.split import split

    parts = split(digits(), "label", 7)
    trained = train(
        parts.x_train, parts.y_train, parts.x_val, parts.y_val, 10, "mlp", {"epochs": 2, "hidden": [128, 64]}, 7
    )
    digest = export(trained.model, 64, directory / "model.onnx")
    (directory / "model.json").write_text(
        json.dumps({"name": "digits", "version": 1, "sha256": digest, "columns": {"classes": parts.classes}})
    )
    return parts.x_test


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, body: str, connections: int, seconds: int, work: Path) -> dict[str, float]:
    script = work / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(body)}\n'
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * units[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def onnxruntime_floor(model_dir: Path, row: np.ndarray, seconds: float = 3.0) -> float:
    from lathe_serving.model import LatheModel

    model = LatheModel(str(model_dir))
    model.load()
    batch = row.reshape(1, -1)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict(batch)
        calls += 1
    return calls / (time.perf_counter() - started)


Server = tuple[list[str], dict[str, str], int]  # argv, environment, HTTP port


def seldon(venv: str, model_dir: Path, env: dict[str, str], workers: int | None) -> Server:
    """Seldon's own Python microservice wrapping the same model class."""
    port = free_port()
    parameters = json.dumps([{"name": "model_dir", "value": str(model_dir), "type": "STRING"}])
    argv = [f"{venv}/bin/seldon-core-microservice", "lathe_serving.model.LatheModel", "--service-type", "MODEL"]
    argv += ["--http-port", str(port), "--grpc-port", str(free_port()), "--metrics-port", str(free_port())]
    argv += ["--parameters", parameters, *(["--workers", str(workers)] if workers else [])]
    return argv, {**env, "PYTHONPATH": str(ROOT / "serving")}, port


def lathe(model_dir: Path, env: dict[str, str], workers: int) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "lathe_serving", "--model-dir", str(model_dir), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers)]
    return argv, {**env, "PYTHONPATH": os.pathsep.join(sys.path[:3])}, port


def measure(
    servers: dict[str, Server], body: str, connections: list[int], seconds: int, work: Path
) -> dict[str, dict[int, dict[str, float]]]:
    """Each server in turn, started, warmed up, loaded by wrk at each connection count, stopped."""
    results: dict[str, dict[int, dict[str, float]]] = {}
    for name, (argv, server_env, port) in servers.items():
        with open(work / f"{name.split()[0]}.log", "ab") as log:
            process = subprocess.Popen(argv, env=server_env, stdout=log, stderr=log, start_new_session=True)
        try:
            wait_up(f"http://127.0.0.1:{port}/health/ping")
            url = f"http://127.0.0.1:{port}/api/v1.0/predictions"
            wrk(url, body, 8, 2, work)  # warm up
            results[name] = {c: wrk(url, body, c, seconds, work) for c in connections}
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)
    return results


def report(results: dict[str, dict[int, dict[str, float]]], floor: float, cores: int, seconds: int) -> None:
    lathe_name = f"lathe (workers={cores})"
    print(f"\nServing benchmark: {cores} cores, one-row Seldon requests, wrk -t1 for {seconds}s per cell")
    print(f"{'server':<22}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, cells in results.items():
        for c, r in cells.items():
            print(f"{name:<22}{c:>6}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>9.0f}")
    print(f"{'onnxruntime in-process':<22}{'':>6}{floor:>10.0f}  calls/s (floor: one row, no HTTP)")
    lathe8 = results[lathe_name][8]
    for name, target in (("seldon (defaults)", 10), (f"seldon (workers={cores})", 5)) if len(results) > 2 else ():
        ratio = lathe8["rps"] / results[name][8]["rps"]
        print(
            f"at 8 connections: {lathe_name} / {name} = {ratio:.1f}x (target >= {target}x: {'met' if ratio >= target else 'NOT met'})"
        )
    print(
        f"at 8 connections: {lathe_name} p99 = {lathe8['p99']:.2f} ms (target < 5 ms: {'met' if lathe8['p99'] < 5 else 'NOT met'})"
    )
    print(f"lathe at 8 connections reaches {lathe8['rps'] / floor:.2f}x of raw onnxruntime calls/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", default="1,8,64")
    parser.add_argument("--lathe-only", action="store_true", help="skip the Seldon servers (quick checks)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: run `make tools` (hack/setup.sh) first")
    cores = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="lathe-bench-serving-"))
    model_dir = work / "model"
    model_dir.mkdir()
    rows = make_model(model_dir)
    body = json.dumps({"data": {"ndarray": [rows[0].tolist()]}})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    servers = {f"lathe (workers={cores})": lathe(model_dir, env, cores), "lathe (workers=1)": lathe(model_dir, env, 1)}
    if not args.lathe_only:
        venv = subprocess.run([str(ROOT / "hack/serving-venv.sh")], capture_output=True, text=True, check=True)
        seldon_venv = venv.stdout.strip()
        servers["seldon (defaults)"] = seldon(seldon_venv, model_dir, env, None)
        servers[f"seldon (workers={cores})"] = seldon(seldon_venv, model_dir, env, cores)
    results = measure(servers, body, [int(c) for c in args.connections.split(",")], args.seconds, work)
    report(results, onnxruntime_floor(model_dir, rows[0]), cores, args.seconds)


if __name__ == "__main__":
    main()

"""Lathe's drift check vs Evidently's DataDriftPreset: speed, peak memory and what each flags.

    $(hack/venv.sh)/bin/python benchmarks/drift.py [--rows 1000000] [--columns 100]
        [--detection-sizes 10000,100000,1000000] [--detection-columns 50]
        [--parts speed,detection] [--repeat 1] [--evidently-timeout 900] [--tools lathe,evidently]

Evidently 0.7 needs pandas < 3, so it runs in its own venv (``hack/evidently-venv.sh``,
built on first use). Both sides read the same Parquet files, written once per run.

Speed: ROWS x COLUMNS float64 columns (normal, varied means and scales; every tenth column
of the current data shifted by half a standard deviation). Each task runs in a fresh
process and reports its wall seconds (reading the Parquet apart from the work) and its
resident memory (VmHWM, so a parent's never counts: the read's peak, then, reset, what the
work starts from and its peak): Lathe's profile build of the
reference (what ingest does), Lathe's check of the current data against that profile
after a JSON round trip (what a DriftMonitor's run reads from the store), and Evidently's
``Report([DataDriftPreset()], include_tests=True).run(reference, current)``, the baseline.
Targets: the check at least 40x faster than Evidently, under 10 s and 2 GB at 1M x 100.
Evidently is stopped after --evidently-timeout seconds and reported with how far it got;
``--tools lathe`` leaves Evidently out (its venv is then never built).

Detection: for each size, reference and current windows of that many rows drawn
independently, a number of columns per scenario (fewer at 1M rows, to bound the run), and
the fraction of each scenario's columns flagged with each tool's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 0
SHARES = (0.40, 0.25, 0.15, 0.12, 0.08)
CATEGORIES = ("a", "b", "c", "d", "e")
SCENARIOS = (
    "numeric unshifted",
    "numeric mean +0.3 sd",
    "numeric spread x1.5",
    "categorical unshifted",
    "categorical share +-10 pt",
)
LARGE = 1_000_000  # at this many rows and more, detection uses fewer columns per scenario
LARGE_COLUMNS = 10


# Children: each runs in a fresh process (Lathe's venv or Evidently's) and prints JSON lines:
# its read (time, peak) as soon as it is done, then its result.


def _hwm(pid: int) -> float:
    """A process's peak RSS since exec (VmHWM), in MiB: unlike ru_maxrss it never counts a parent's pages."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _read_done(read: float) -> None:
    """Mark the end of a child's read: report its time and peak, then restart the peak for the work.

    Printed at once, so a child stopped mid-work still says how far it got."""
    peak = _hwm(os.getpid())
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    resident = _hwm(os.getpid())  # what the work starts from: the data, and memory the allocators kept
    print(
        json.dumps({"read": read, "read_peak_mib": peak, "work_start_mib": resident, "work_started": time.time()}),
        flush=True,
    )


def child_profile(work: Path) -> dict:
    import pandas as pd

    from lathe_pipelines.steps.profile import profile

    started = time.perf_counter()
    frame = pd.read_parquet(work / "reference.parquet")
    _read_done(time.perf_counter() - started)
    started = time.perf_counter()
    schema = [{"name": str(n), "type": "float"} for n in frame.columns]
    (work / "profile.json").write_text(json.dumps(profile(frame, schema, None)))
    return {"compute": time.perf_counter() - started}


def child_check(work: Path) -> dict:
    from lathe_pipelines.drift.check import check
    from lathe_pipelines.drift.window import read_columns

    started = time.perf_counter()
    text = (work / "profile.json").read_text()
    current, _ = read_columns(work / "current.parquet")  # what drift.window.from_dataset reads with
    _read_done(time.perf_counter() - started)
    started = time.perf_counter()
    result = check(json.loads(text), current)
    seconds = time.perf_counter() - started
    return {"compute": seconds, "drifted": sorted(c.name for c in result.columns if c.drifted)}


def _evidently_flags(result: object) -> dict[str, dict]:
    """Per column: Evidently's method and whether its drift test failed (tests with id "drift")."""
    found = {}
    for test in result.dict()["tests"]:  # type: ignore[attr-defined]
        if test["id"] == "drift":
            params = test["metric_config"]["params"]
            found[params["column"]] = {"drifted": test["status"] == "FAIL", "method": params["method"]}
    return found


def child_evidently(work: Path) -> dict:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    reference = pd.read_parquet(work / "reference.parquet")
    current = pd.read_parquet(work / "current.parquet")
    _read_done(time.perf_counter() - started)
    started = time.perf_counter()
    result = Report([DataDriftPreset()], include_tests=True).run(reference_data=reference, current_data=current)
    seconds = time.perf_counter() - started
    flags = _evidently_flags(result)
    methods = sorted({f["method"] for f in flags.values()})
    return {
        "compute": seconds,
        "drifted": sorted(c for c, f in flags.items() if f["drifted"]),
        "columns": len(flags),
        "methods": methods,
    }


def child_detect(work: Path) -> dict:
    """Lathe's defaults on the detection data: profile the reference, round-trip it as JSON, check."""
    import pandas as pd

    from lathe_pipelines.drift.check import check
    from lathe_pipelines.steps.profile import profile

    reference = pd.read_parquet(work / "reference.parquet")
    current = pd.read_parquet(work / "current.parquet")
    schema = [{"name": n, "type": "string" if n.startswith("cat") else "float"} for n in reference.columns]
    stored = json.dumps(profile(reference, schema, None))
    result = check(json.loads(stored), {n: current[n].to_numpy() for n in current.columns})
    return {"drifted": sorted(c.name for c in result.columns if c.drifted), "columns": len(result.checked)}


CHILDREN = {"profile": child_profile, "check": child_check, "evidently": child_evidently, "detect": child_detect}


def spawn(python: str, mode: str, work: Path, timeout: float | None = None) -> dict:
    """Run a child; one that overruns ``timeout`` is stopped and reported with how far it got."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("core", "pipelines"))}
    child = subprocess.Popen(
        [python, __file__, "--child", mode, str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak, stopped = _hwm(child.pid), time.time()
        child.kill()
        out, err = child.communicate()
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"{mode} was stopped before it finished reading") from None
        return {**lines[0], "compute": stopped - lines[0]["work_started"], "work_peak_mib": peak, "timed_out": True}
    if child.returncode:
        raise RuntimeError(f"{mode} failed ({child.returncode}):\n{err[-4000:]}")
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {k: v for line in lines for k, v in line.items()}


# Data.


def write_speed_data(work: Path, rows: int, columns: int) -> None:
    """Reference and current, column by column; every tenth current column shifted by 0.5 sd."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    means, scales = rng.uniform(-50, 50, columns), rng.uniform(0.5, 20, columns)
    for name, shifted in (("reference", False), ("current", True)):
        data = {}
        for i in range(columns):
            shift = 0.5 * scales[i] if shifted and i % 10 == 0 else 0.0
            data[f"f{i}"] = rng.normal(means[i] + shift, scales[i], rows)
        pq.write_table(pa.table(data), work / f"{name}.parquet")
        del data


def _categorical(rng: object, rows: int, shares: tuple[float, ...]) -> object:
    import pandas as pd

    codes = rng.choice(len(CATEGORIES), rows, p=shares)  # type: ignore[attr-defined]
    return pd.Categorical.from_codes(codes, categories=list(CATEGORIES))


def moved(i: int) -> tuple[float, ...]:
    """Column i's shifted shares: ten points from category i % 4 to the next one."""
    shares = list(SHARES)
    shares[i % 4] -= 0.10
    shares[i % 4 + 1] += 0.10
    return tuple(shares)


def write_detection_data(work: Path, rows: int, per_scenario: int) -> None:
    """Columns ``<scenario prefix><i>`` for each scenario, reference and current drawn independently."""
    import numpy as np
    import pandas as pd

    frames: dict[str, dict] = {"reference": {}, "current": {}}
    for k, prefix in enumerate(("num_none_", "num_mean_", "num_spread_", "cat_none_", "cat_share_")):
        rng = np.random.default_rng([SEED, rows, k])
        for i in range(per_scenario):
            name = f"{prefix}{i}"
            if prefix.startswith("num"):
                mean, scale = rng.uniform(-50, 50), rng.uniform(0.5, 20)
                frames["reference"][name] = rng.normal(mean, scale, rows)
                shift = 0.3 * scale if prefix == "num_mean_" else 0.0
                spread = 1.5 if prefix == "num_spread_" else 1.0
                frames["current"][name] = rng.normal(mean + shift, scale * spread, rows)
            else:
                frames["reference"][name] = _categorical(rng, rows, SHARES)
                shares = moved(i) if prefix == "cat_share_" else SHARES
                frames["current"][name] = _categorical(rng, rows, shares)
    for side, data in frames.items():
        pd.DataFrame(data).to_parquet(work / f"{side}.parquet")


# Parts.


def evidently_python() -> str:
    venv = subprocess.run([str(ROOT / "hack" / "evidently-venv.sh")], capture_output=True, text=True, check=True)
    return venv.stdout.strip() + "/bin/python"


def _row(label: str, r: dict) -> str:
    work = f"> {r['compute']:.0f}" if r.get("timed_out") else f"{r['compute']:.2f}"
    total = "stopped" if r.get("timed_out") else f"{r['read'] + r['compute']:.2f}"
    memory = f"{r['read_peak_mib']:>10.0f}{r['work_start_mib']:>10.0f}{r['work_peak_mib']:>10.0f}"
    return f"{label:<34}{r['read']:>8.2f}{work:>9}{total:>9}{memory}"


def _peak(r: dict) -> float:
    return max(r["read_peak_mib"], r["work_peak_mib"])


def _compare(checked: dict, baseline: dict, columns: int, timeout: float) -> None:
    """Evidently against Lathe's check, from one speed run."""
    if baseline.get("timed_out"):
        print(
            f"Evidently was stopped after {timeout:.0f}s (--evidently-timeout), its peak so far shown: "
            f"Evidently / Lathe check at least {baseline['compute'] / checked['compute']:.1f}x work time, "
            f"at least {_peak(baseline) / _peak(checked):.1f}x peak memory"
        )
        return
    print(
        f"Evidently / Lathe check: {baseline['compute'] / checked['compute']:.1f}x work time, "
        f"{(baseline['read'] + baseline['compute']) / (checked['read'] + checked['compute']):.1f}x total time, "
        f"{_peak(baseline) / _peak(checked):.1f}x peak memory"
    )
    print(
        f"Drifted columns: Lathe {len(checked['drifted'])}, Evidently {len(baseline['drifted'])} of "
        f"{baseline['columns']} (the same columns: {checked['drifted'] == baseline['drifted']}; "
        f"{len(range(0, columns, 10))} shifted); Evidently's method: {', '.join(baseline['methods'])}"
    )


def speed(rows: int, columns: int, repeat: int, evidently: str | None, timeout: float) -> None:
    """``evidently`` is its venv's Python, or None to measure Lathe alone."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        write_speed_data(work, rows, columns)
        print(f"Wrote {rows} x {columns} float64 reference and current Parquet in {time.perf_counter() - started:.1f}s")
        for run in range(1, repeat + 1):
            built = spawn(sys.executable, "profile", work)
            checked = spawn(sys.executable, "check", work)
            baseline = spawn(evidently, "evidently", work, timeout) if evidently else None
            print(f"\nSpeed, run {run} of {repeat} ({rows} rows x {columns} columns, {os.cpu_count()} cores)")
            print(f"{'':<34}{'read s':>8}{'work s':>9}{'total s':>9}{'RSS MiB: read peak, work start, work peak':>44}")
            print(_row("Lathe profile build (ingest)", built))
            print(_row("Lathe check (profile from JSON)", checked))
            if baseline:
                print(_row("Evidently DataDriftPreset", baseline))
            print("Targets: the check at least 40x faster than Evidently, under 10 s and 2 GB at 1M x 100")
            if baseline:
                _compare(checked, baseline, columns, timeout)
            else:
                print(f"Drifted columns: Lathe {len(checked['drifted'])} ({len(range(0, columns, 10))} shifted)")


PREFIXES = dict(zip(SCENARIOS, ("num_none_", "num_mean_", "num_spread_", "cat_none_", "cat_share_")))


def _rate(flagged: set[str], prefix: str, indices: range) -> float:
    return sum(f"{prefix}{i}" in flagged for i in indices) / len(indices)


def detection(sizes: list[int], per_scenario: int, evidently: str) -> None:
    rates: dict[tuple[str, int], tuple[float, float]] = {}
    notes = []
    for rows in sizes:
        n = min(per_scenario, LARGE_COLUMNS) if rows >= LARGE else per_scenario
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            write_detection_data(work, rows, n)
            lathe = set(spawn(sys.executable, "detect", work)["drifted"])
            baseline = spawn(evidently, "evidently", work)
        flagged = set(baseline["drifted"])
        for scenario, prefix in PREFIXES.items():
            rates[scenario, rows] = (_rate(lathe, prefix, range(n)), _rate(flagged, prefix, range(n)))
        moves = ", ".join(
            f"{CATEGORIES[k]}->{CATEGORIES[k + 1]} {_rate(lathe, 'cat_share_', range(k, n, 4)):.2f}/"
            f"{_rate(flagged, 'cat_share_', range(k, n, 4)):.2f}"
            for k in range(4)
        )
        notes.append(
            f"{rows} rows: {n} columns per scenario; Evidently's methods: {', '.join(baseline['methods'])}; "
            f"share moves flagged (Lathe/Evidently): {moves}"
        )
    print("\nDetection: fraction of each scenario's columns flagged (defaults of each tool)")
    print(f"{'scenario':<28}{'rows':>9}{'Lathe':>8}{'Evidently':>11}")
    for scenario in SCENARIOS:
        for rows in sizes:
            lathe_rate, evidently_rate = rates[scenario, rows]
            print(f"{scenario:<28}{rows:>9}{lathe_rate:>8.2f}{evidently_rate:>11.2f}")
    print(
        f"Categorical shares {SHARES} over {CATEGORIES}; shifted column i moves ten points from category i % 4 to the next"
    )
    print("\n".join(notes))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        result = CHILDREN[sys.argv[2]](Path(sys.argv[3]))
        print(json.dumps({**result, "work_peak_mib": _hwm(os.getpid())}))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--detection-sizes", default="10000,100000,1000000")
    parser.add_argument("--detection-columns", type=int, default=50, help="columns per scenario")
    parser.add_argument("--parts", default="speed,detection")
    parser.add_argument("--repeat", type=int, default=1, help="speed runs")
    parser.add_argument("--evidently-timeout", type=float, default=900, help="seconds before the speed run stops it")
    parser.add_argument("--tools", default="lathe,evidently", help="lathe alone leaves Evidently out")
    args = parser.parse_args()
    tools = args.tools.split(",")
    if "lathe" not in tools:
        parser.error("--tools must include lathe: Evidently is measured against it")
    parts = args.parts.split(",")
    if "detection" in parts and "evidently" not in tools:
        parser.error("detection compares both tools: run it with --tools lathe,evidently")
    evidently = evidently_python() if "evidently" in tools else None
    if "speed" in parts:
        speed(args.rows, args.columns, args.repeat, evidently, args.evidently_timeout)
    if "detection" in parts and evidently:
        detection([int(s) for s in args.detection_sizes.split(",")], args.detection_columns, evidently)


if __name__ == "__main__":
    main()

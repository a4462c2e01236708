"""Dataset ingest (read + schema + validate + version + profile + publish) vs plain pandas.

    $(hack/venv.sh)/bin/python benchmarks/ingest.py [--rows 1000000] [--columns 20]
    $(hack/venv.sh)/bin/python benchmarks/ingest.py --rows 10000000 --columns 50 --repeat 1

Both sides read the same CSV; the baseline is pandas.read_csv + DataFrame.to_parquet.
Each side runs in its own process so peak memory is its own (ru_maxrss of the process plus
its largest child: ingest validates in a forked process). Prints wall seconds, peak RSS
and the ratios ingest/baseline (target: at most 2x both). Ingest streams, so its peak RSS
should stay under ``PEAK_TARGET_MIB`` at any size; the in-memory baseline may not fit at
10M x 50 (``--skip-baseline`` leaves it out): the output says when it failed or was skipped.

Measured on a 2-CPU, 24 GiB machine with nothing else running (docs/datasets.md):
1M x 20, best of 3: pandas 1.13 to 1.22 s and 539 MiB, ingest 2.09 to 2.10 s and 899 MiB
(1.79 to 1.85x time, 1.67x memory, in two runs); 10M x 50, one run: pandas 35.2 s and
11,258 MiB, ingest 45.1 s and 1,421 MiB. Ingest uses about 2.4x pandas' CPU time, so on a
busy machine its ratio grows towards that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEAK_TARGET_MIB = 2048
CSV_CHUNK_ROWS = 1_000_000  # the CSV is written in pieces so the generator itself fits at 10M x 50
CHILD = r"""
import json, resource, sys, time
sys.path[:0] = [{root!r} + "/core", {root!r} + "/pipelines"]
mode, csv, out = sys.argv[1:4]
started = time.perf_counter()
if mode == "baseline":
    import pandas as pd
    pd.read_csv(csv).to_parquet(out + "/baseline.parquet")
else:
    import os
    os.environ["LATHE_SOURCES_ALLOW_LOCAL"] = "true"  # a local file, as local mode reads it
    from lathe_core.store_local import LocalStore
    from lathe_pipelines.ingest import IngestRequest, ingest
    spec = json.loads(sys.argv[4])
    report = ingest(IngestRequest("bench", "data", "run-0", spec), LocalStore(out + "/store"), None)
    assert report["outcome"] == "Published", report
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({{"seconds": time.perf_counter() - started, "peak_mib": peak / 1024}}))
"""


def make_csv(path: Path, rows: int, columns: int) -> None:
    """The same values pandas' to_csv wrote before (whole floats without ".0", a quoted header), by Arrow's
    CSV writer: pandas' takes 8 minutes at 10M x 50."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    writer = None
    try:
        for start in range(0, rows, CSV_CHUNK_ROWS):
            n = min(CSV_CHUNK_ROWS, rows - start)
            data = {f"f{i}": rng.normal(i, 1 + i / 10, n).round(4) for i in range(columns - 2)}
            data["category"] = rng.choice(["a", "b", "c", "d"], n)
            data["label"] = rng.integers(0, 10, n)
            table = pa.table(data)
            if writer is None:
                writer = pacsv.CSVWriter(
                    str(path), table.schema, write_options=pacsv.WriteOptions(quoting_style="none")
                )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def run(mode: str, csv: Path, out: Path, spec: dict) -> dict:
    """One side in its own process; ``{"error": ...}`` when it failed (the baseline may run out of memory)."""
    script = CHILD.format(root=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script, mode, str(csv), str(out), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
    )
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or [""])[-1][:200]
        return {"error": f"exit code {result.returncode} {tail}".strip()}
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-baseline", action="store_true", help="leave out pandas (it may not fit in memory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv = work / "data.csv"
        started = time.perf_counter()
        make_csv(csv, args.rows, args.columns)
        print(
            f"Wrote {args.rows} x {args.columns} CSV ({csv.stat().st_size / 2**20:.0f} MiB) "
            f"in {time.perf_counter() - started:.1f}s"
        )
        numeric = [f"f{i}" for i in range(args.columns - 2)]
        spec = {
            "source": {"uri": str(csv), "format": "csv"},
            "target": "label",
            "expectations": [
                *({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": c}} for c in numeric),
                *(
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {"column": c, "min_value": -100, "max_value": 100},
                    }
                    for c in numeric[:5]
                ),
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": "category", "value_set": list("abcd")},
                },
                {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
            ],
        }
        modes = ("ingest",) if args.skip_baseline else ("baseline", "ingest")
        results: dict[str, list[dict]] = {mode: [] for mode in modes}
        for i in range(args.repeat):
            for mode in modes:
                out = work / f"{mode}-{i}"
                out.mkdir()
                results[mode].append(run(mode, csv, out, spec))
                shutil.rmtree(out, ignore_errors=True)  # 10M x 50 outputs are GBs each
        report(results, len(spec["expectations"]), args.repeat)


def report(results: dict[str, list[dict]], expectations: int, repeat: int) -> None:
    """The table, the ratios where both sides ran, and ingest's peak RSS against its target."""
    errors = [r["error"] for r in results["ingest"] if "error" in r]
    if errors:
        raise SystemExit(f"lathe ingest failed: {errors[0]}")
    best = {
        mode: min(r["seconds"] for r in runs) for mode, runs in results.items() if all("seconds" in r for r in runs)
    }
    peak = {mode: max(r["peak_mib"] for r in runs) for mode, runs in results.items() if mode in best}
    print(f"{'':<34}{'seconds':>9}{'peak MiB':>10}")
    if "baseline" in best:
        print(f"{'pandas read_csv + to_parquet':<34}{best['baseline']:>9.2f}{peak['baseline']:>10.0f}")
    elif "baseline" in results:
        failed = next(r["error"] for r in results["baseline"] if "error" in r)
        print(f"{'pandas read_csv + to_parquet':<34}  failed: {failed}")
    else:
        print(f"{'pandas read_csv + to_parquet':<34}  skipped (--skip-baseline)")
    print(f"{'lathe ingest (validate, profile)':<34}{best['ingest']:>9.2f}{peak['ingest']:>10.0f}")
    verdict = "under" if peak["ingest"] < PEAK_TARGET_MIB else "OVER"
    print(f"lathe ingest peak RSS: {peak['ingest']:.0f} MiB ({verdict} the {PEAK_TARGET_MIB} MiB target)")
    if "baseline" in best:
        print(
            f"ratio ingest/baseline: {best['ingest'] / best['baseline']:.2f}x time, "
            f"{peak['ingest'] / peak['baseline']:.2f}x peak memory (target: at most 2x both); "
            f"{expectations} expectations, best of {repeat}"
        )
    else:
        print(f"no ratios: the baseline did not run; {expectations} expectations, best of {repeat}")


if __name__ == "__main__":
    main()

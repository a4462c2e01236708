"""Dataset ingest (read + schema + validate + version + profile + publish) vs plain pandas.

    $(hack/venv.sh)/bin/python benchmarks/ingest.py [--rows 1000000] [--columns 20]

Both sides read the same CSV; the baseline is pandas.read_csv + DataFrame.to_parquet.
Each side runs in its own process so peak memory is its own (ru_maxrss of the process plus
its largest child: ingest validates in a forked process). Prints wall
seconds, peak RSS and the ratio ingest/baseline (target: at most 2x).
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
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    data = {f"f{i}": rng.normal(i, 1 + i / 10, rows).round(4) for i in range(columns - 2)}
    data["category"] = rng.choice(["a", "b", "c", "d"], rows)
    data["label"] = rng.integers(0, 10, rows)
    pd.DataFrame(data).to_csv(path, index=False)


def run(mode: str, csv: Path, out: Path, spec: dict) -> dict:
    script = CHILD.format(root=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script, mode, str(csv), str(out), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
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
        results: dict[str, list[dict]] = {"baseline": [], "ingest": []}
        for i in range(args.repeat):
            for mode in ("baseline", "ingest"):
                out = work / f"{mode}-{i}"
                out.mkdir()
                results[mode].append(run(mode, csv, out, spec))
        best = {mode: min(r["seconds"] for r in runs) for mode, runs in results.items()}
        peak = {mode: max(r["peak_mib"] for r in runs) for mode, runs in results.items()}
        print(f"{'':<34}{'seconds':>9}{'peak MiB':>10}")
        print(f"{'pandas read_csv + to_parquet':<34}{best['baseline']:>9.2f}{peak['baseline']:>10.0f}")
        print(f"{'lathe ingest (validate, profile)':<34}{best['ingest']:>9.2f}{peak['ingest']:>10.0f}")
        print(
            f"ratio ingest/baseline: {best['ingest'] / best['baseline']:.2f}x time, "
            f"{peak['ingest'] / peak['baseline']:.2f}x peak memory (target: at most 2x time); "
            f"{len(spec['expectations'])} expectations, best of {args.repeat}"
        )


if __name__ == "__main__":
    main()

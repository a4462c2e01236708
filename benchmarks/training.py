"""The local training pipeline (kfp.local, four steps in their own processes) vs the same work as one plain script.

    $(hack/venv.sh)/bin/python benchmarks/training.py [--epochs 20]

Both train the same MLP on the same digits version with the same seed, export ONNX and
check parity; the pipeline also gates and registers. Prints wall seconds of each, the
ratio pipeline/script (target: at most 1.5x) and the device. On a GPU machine both train
on CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = [str(ROOT / "core"), str(ROOT / "pipelines"), str(ROOT / "serving")]

SCRIPT = r"""
import io, json, sys, time, tempfile, pathlib
started = time.perf_counter()
import pyarrow.parquet as pq, torch
from lathe_core.store_local import LocalStore
from lathe_core.datasets import DatasetVersions
from lathe_pipelines.steps.split import split
from lathe_pipelines.steps.classifier import train
from lathe_pipelines.steps.metrics import metrics
from lathe_pipelines.steps.export import export, parity
store, version, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
versions = DatasetVersions(LocalStore(store), "bench", "digits")
frame = pq.read_table(io.BytesIO(versions.store.get(versions.key(version, "data.parquet")))).to_pandas()
parts = split(frame, "label", 42)
trained = train(parts.x_train, parts.y_train, parts.x_val, parts.y_val, len(parts.classes), "mlp",
                {"epochs": epochs}, 42)
with torch.no_grad():
    logits = trained.model(torch.tensor(parts.x_test)).numpy()
result = metrics(logits, parts.y_test, parts.classes)
path = pathlib.Path(tempfile.mkdtemp()) / "model.onnx"
export(trained.model, len(parts.features), path)
parity(trained.model, path, parts.x_test)
print(json.dumps({"seconds": time.perf_counter() - started, "accuracy": result["accuracy"], "device": trained.device}))
"""

PIPELINE = r"""
import json, sys, time, tempfile
started = time.perf_counter()
from lathe_pipelines import training
store, version, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
args = {"namespace": "bench", "dataset": "digits", "dataset_version": version, "target": "label",
        "model_name": "bench", "model_type": "mlp", "hyperparameters": {"epochs": epochs}, "seed": 42,
        "gates": [], "baseline_version": 0, "lineage": {"run": {"id": sys.argv[4]}}, "report_key": ""}
out = training.run_local(args, tempfile.mkdtemp())
print(json.dumps({"seconds": time.perf_counter() - started, "accuracy": out["metrics"]["accuracy"],
                  "device": out["device"]}))
"""


def run(code: str, *args: str, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sys.path[:0] = PATHS
    from lathe_core.store_local import LocalStore
    from lathe_pipelines.ingest import IngestRequest, ingest
    from lathe_pipelines.sample_data import digits

    os.environ["LATHE_SOURCES_ALLOW_LOCAL"] = "true"  # a local file, as local mode reads it
    work = Path(tempfile.mkdtemp(prefix="lathe-bench-"))
    digits().to_csv(work / "digits.csv", index=False)
    report = ingest(
        IngestRequest("bench", "digits", "r", {"source": {"uri": str(work / "digits.csv")}, "target": "label"}),
        LocalStore(work / "store"),
        None,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(PATHS), "LATHE_STORE_URI": f"file://{work / 'store'}"}
    results: dict[str, list[dict]] = {"script": [], "pipeline": []}
    for i in range(args.repeat):
        results["script"].append(run(SCRIPT, str(work / "store"), report["version"], str(args.epochs), env=env))
        results["pipeline"].append(
            run(PIPELINE, str(work / "store"), report["version"], str(args.epochs), f"r{i}", env=env)
        )
    best = {k: min(r["seconds"] for r in v) for k, v in results.items()}
    print(f"{'':<40}{'seconds':>9}{'accuracy':>10}  device")
    for name, label in (("script", "plain script (one process)"), ("pipeline", "kfp.local pipeline (4 steps)")):
        r = results[name][0]
        print(f"{label:<40}{best[name]:>9.2f}{r['accuracy']:>10.4f}  {r['device']}")
    print(
        f"ratio pipeline/script: {best['pipeline'] / best['script']:.2f}x (target: at most 1.5x); "
        f"{args.epochs} epochs, best of {args.repeat}"
    )


if __name__ == "__main__":
    main()

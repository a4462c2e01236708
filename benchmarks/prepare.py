"""The training pipeline's data path in bounded memory: prepare (a Dataset version's Parquet -> the split
file) and a PyTorch epoch read from the split file, against the whole-frame way in the same run.

    $(hack/venv.sh)/bin/python benchmarks/prepare.py [--rows 2000000] [--columns 50]

Sides, each in its own process so its memory is its own:
- prepare, whole frame (the baseline: the prepare step before this change): pyarrow reads the
  whole file into pandas, ``split.split`` encodes and splits it, ``np.savez`` writes it;
- prepare, batched (``steps/prepare.py``): record batches, rows straight to their parts on disk;
- a PyTorch epoch (MLP, batch 512, CPU) with the training split copied into memory (what
  ``classifier.train`` does up to ``IN_MEMORY``; here at any size), and read minibatch by
  minibatch from the memory-mapped split file (what it does past ``IN_MEMORY``; here at any size).
Memory is sampled every 10 ms from /proc: the peak of anonymous memory (what the process holds
and the kernel cannot take back) and the peak RSS, which also counts the split file's pages the
kernel keeps cached for the process while memory is free (it drops them when memory runs short).
Prints seconds, both peaks, and the ratios batched / whole frame.
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
WRITE_ROWS = 500_000
CHILD = r"""
import json, sys, threading, time
sys.path[:0] = [{root!r} + "/core", {root!r} + "/pipelines"]
mode, source, out = sys.argv[1:4]
peaks = {{"anon": 0, "rss": 0}}
def sample():
    while True:
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        peaks["anon"] = max(peaks["anon"], int(fields["RssAnon"].split()[0]))
        peaks["rss"] = max(peaks["rss"], int(fields["VmRSS"].split()[0]))
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
import numpy as np, pyarrow.parquet as pq, torch
from lathe_pipelines.steps import classifier, prepare, splitfile
from lathe_pipelines.steps.encoding import save
from lathe_pipelines.steps.split import split
torch.set_num_threads(1)
started = time.perf_counter()
if mode == "whole":
    frame = pq.read_table(source, use_threads=False).to_pandas(use_threads=False)
    parts = split(frame, "label", 7)
    np.savez(out, x_train=parts.x_train, y_train=parts.y_train, x_val=parts.x_val, y_val=parts.y_val,
             x_test=parts.x_test, y_test=parts.y_test, encoding=save(parts.encoding))
elif mode == "batched":
    prepare.prepare(__import__("pathlib").Path(source), "label", 7, __import__("pathlib").Path(out))
else:
    classifier.IN_MEMORY = 0 if mode == "mapped" else 2**62  # "memory": copied whole, as before this change
    data = splitfile.load(out)
    classifier.train(data["x_train"], data["y_train"], data["x_val"], data["y_val"], 10, "mlp",
                     {{"epochs": 1, "batchSize": 512}}, 7, device="cpu")
time.sleep(0.02)
print(json.dumps({{"seconds": time.perf_counter() - started, "anon_mib": peaks["anon"] / 1024,
                  "rss_mib": peaks["rss"] / 1024}}))
"""


def make_parquet(path: Path, rows: int, columns: int) -> None:
    """Float columns, a four-category text column and a ten-class label, written in pieces."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    try:
        for start in range(0, rows, WRITE_ROWS):
            n = min(WRITE_ROWS, rows - start)
            data = {f"f{i}": rng.normal(i, 1 + i / 10, n) for i in range(columns - 2)}
            data["category"] = rng.choice(["a", "b", "c", "d"], n)
            data["label"] = rng.integers(0, 10, n)
            table = pa.table(data)
            writer = writer or pq.ParquetWriter(str(path), table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def run(mode: str, source: Path, out: Path) -> dict:
    script = CHILD.format(root=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script, mode, str(source), str(out)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return {"error": f"exit code {result.returncode} {(result.stderr.strip().splitlines() or [''])[-1][:200]}"}
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "data.parquet"
        make_parquet(source, args.rows, args.columns)
        print(f"{args.rows} x {args.columns} Parquet version: {source.stat().st_size / 2**20:.0f} MiB")
        results = {}
        for mode in ("whole", "batched"):
            results[mode] = run(mode, source, work / f"{mode}.npz")
        os.remove(work / "whole.npz")
        for mode in ("memory", "mapped"):
            results[mode] = run(mode, source, work / "batched.npz")
    report(results)


def report(results: dict[str, dict]) -> None:
    names = {
        "whole": "prepare, whole frame",
        "batched": "prepare, record batches",
        "memory": "epoch, split copied to memory",
        "mapped": "epoch, split memory-mapped",
    }
    print(f"{'':<32}{'seconds':>9}{'anon MiB':>10}{'RSS MiB':>9}")
    for mode, name in names.items():
        r = results[mode]
        if "error" in r:
            print(f"{name:<32}  failed: {r['error']}")
            continue
        print(f"{name:<32}{r['seconds']:>9.2f}{r['anon_mib']:>10.0f}{r['rss_mib']:>9.0f}")
    for new, old in (("batched", "whole"), ("mapped", "memory")):
        a, b = results[new], results[old]
        if "error" not in a and "error" not in b:
            print(
                f"ratio {new}/{old}: {a['seconds'] / b['seconds']:.2f}x time, "
                f"{a['anon_mib'] / b['anon_mib']:.2f}x anonymous memory, {a['rss_mib'] / b['rss_mib']:.2f}x RSS"
            )


if __name__ == "__main__":
    main()

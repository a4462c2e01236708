"""Run a Lathe edge bundle: needs only Python 3.9+, numpy and onnxruntime.

    python runner.py [--int8] [--csv rows.csv | < rows.json]

Reads rows (a JSON list of lists or of objects by column name, or a CSV with the bundle's columns by name:
the features' numbers, then the categorical columns' text)
and prints one JSON object per row: the predicted class and the class probabilities (a regressor: its value).
The files are checked against SHA256SUMS before the model is loaded.
"""

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent


def verify() -> None:
    for line in (HERE / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        if hashlib.sha256((HERE / name).read_bytes()).hexdigest() != digest:
            sys.exit(f"{name} does not match SHA256SUMS: the bundle is damaged")


def read_rows(path: str, features: list, categorical: list) -> list:
    """Rows of raw values: the features' numbers, then the categorical columns' text (by name in a CSV)."""
    if path:
        with open(path, newline="") as handle:
            return [[float(row[f]) for f in features] + [row[c] for c in categorical] for row in csv.DictReader(handle)]
    rows = json.load(sys.stdin)
    if rows and isinstance(rows[0], dict):  # objects by column name
        return [[row[f] for f in features] + [row[c] for c in categorical] for row in rows]
    return rows if rows and isinstance(rows[0], list) else [rows]


def feeds(rows: list, features: list, categorical: list) -> dict:
    """The model's inputs: ``input`` (numbers) and, with categorical columns, ``categories`` (text)."""
    numbers = np.asarray([row[: len(features)] for row in rows], dtype=np.float32).reshape(len(rows), len(features))
    if not categorical:
        return {"input": numbers}
    texts = np.asarray([["" if v is None else str(v) for v in row[len(features) :]] for row in rows], dtype=object)
    return {**({"input": numbers} if features else {}), "categories": texts.reshape(len(rows), len(categorical))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--int8", action="store_true", help="use the quantized model")
    parser.add_argument("--csv", default="", help="CSV file with a header naming the columns")
    args = parser.parse_args()
    verify()
    metadata = json.loads((HERE / "metadata.json").read_text())
    model = HERE / ("model.int8.onnx" if args.int8 else "model.onnx")
    if not model.exists():
        sys.exit(f"{model.name} is not in this bundle")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    features, categorical = metadata["features"], metadata.get("categorical") or []
    logits = session.run(None, feeds(read_rows(args.csv, features, categorical), features, categorical))[0]
    if metadata.get("task") == "regression":  # one value per row, in the target's units
        for value in logits.reshape(-1):
            print(json.dumps({"value": round(float(value), 6)}))
        return
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    classes = metadata["classes"]
    for row in probabilities:
        print(
            json.dumps({"prediction": classes[int(row.argmax())], "probabilities": [round(float(p), 6) for p in row]})
        )


if __name__ == "__main__":
    main()

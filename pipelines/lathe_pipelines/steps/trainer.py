"""A team's own training code (TrainingRun ``spec.trainer``): what it is given, how it runs where kfp.local
runs the pipeline (a container of its own with the Job backend, ``handover``; a process in local mode), and what
Lathe checks of what it leaves.

The contract (docs/training.md):
  $LATHE_INPUT   train.parquet and validation.parquet (the feature columns, float32: numeric columns, then
                 a one-hot ``column=category`` column per category of each text column; and the target as a
                 class index 0..k-1, or a float32 value for regression) and schema.json (task, features in order,
                 target, class names, seed, dataset version); the test split stays with Lathe, which evaluates on it.
  $LATHE_OUTPUT  model.onnx: one float32 input [batch, features] and, first, float32 scores [batch, classes]
                 that a softmax turns into probabilities (logits or log-probabilities), or for regression
                 float32 values [batch, 1] or [batch]; optionally
                 features.json (the columns the model takes, in its input order, when not all of schema.json's
                 in that order) and metrics.json (the trainer's own figures, kept on the card).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from . import handover, splitfile
from .encoding import Encoding, feeds, wrap
from .errors import TrainingFailed
from .export import INPUT, output_name

INPUT_ENV, OUTPUT_ENV = "LATHE_INPUT", "LATHE_OUTPUT"
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")  # not the store's keys: the trainer gets files
LOG_LINES = 20
STAGE_ROWS = 65_536  # rows per row group of the Parquet files the trainer reads


def stage(splits_path: str, columns: str, seed: int, dataset_version: str, out_dir: str) -> None:
    """Write the trainer's input: the train and validation splits as Parquet, and schema.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data, meta, out = splitfile.load(splits_path), json.loads(columns), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features, target, task = Encoding.of(meta).names(), str(meta["target"]), meta.get("task", "classification")
    for name, part in (("train", "train"), ("validation", "val")):
        x, y = data[f"x_{part}"], data[f"y_{part}"]
        labels = y.astype("float32" if task == "regression" else "int64")
        schema = pa.schema(
            [*(pa.field(f, pa.float32()) for f in features), pa.field(target, pa.from_numpy_dtype(labels.dtype))]
        )
        with pq.ParquetWriter(out / f"{name}.parquet", schema) as writer:
            for start in range(0, len(y), STAGE_ROWS):  # a part may not fit in memory: row groups in turn
                rows = slice(start, start + STAGE_ROWS)
                chunk = np.asarray(x[rows])
                writer.write_table(pa.table({**{f: chunk[:, i] for i, f in enumerate(features)}, target: labels[rows]}))
    schema = {
        "task": task,
        "features": features,
        "target": target,
        "classes": list(meta["classes"]),
        "seed": seed,
        "datasetVersion": dataset_version,
        "rows": {"train": int(len(data["y_train"])), "validation": int(len(data["y_val"]))},
        "output": "model.onnx: input float32 [batch, features]; outputs[0] float32 "
        + ("[batch, 1] values" if task == "regression" else "[batch, classes], logits"),
    }
    (out / "schema.json").write_text(json.dumps(schema, indent=2))


def run(trainer: dict[str, Any], input_dir: str, output_dir: str) -> float:
    """Run the trainer: in its own container with the Job backend (``handover``), else its command as a process
    (local mode: no image of its own); its log goes to this step's. Returns the seconds it took; a non-zero
    exit ends the run with the log's last lines."""
    if handover.active():
        return handover.run(input_dir, output_dir)
    written = [*trainer["command"], *trainer.get("args", [])]
    command = [sys.executable if written[0] in ("python", "python3") else written[0], *written[1:]]
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    env.update({**trainer.get("env", {}), INPUT_ENV: input_dir, OUTPUT_ENV: output_dir})
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    started, last = time.monotonic(), deque(maxlen=LOG_LINES)
    try:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=trainer.get("workingDir") or None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as error:
        raise TrainingFailed("TrainerFailed", f"cannot start {shlex.join(written)}: {error}") from error
    with process:  # closes its pipe, however it ends
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            last.append(line.rstrip())
        code = process.wait()
    if code != 0:
        tail = "\n".join(last)
        raise TrainingFailed("TrainerFailed", f"{shlex.join(written)} exited with {code}; its last lines:\n{tail}")
    return time.monotonic() - started


def check(splits_path: str, columns: str, output_dir: str, onnx_path: str, trainer: dict[str, Any]) -> dict[str, Any]:
    """Load what the trainer wrote, hold it to the contract, and write model.onnx in Lathe's form (input
    ``input`` over every feature in schema order, only output ``logits``); the train step's summary."""
    import onnxruntime as ort

    out, meta = Path(output_dir), json.loads(columns)
    encoding = Encoding.of(meta)
    features, classes, task = encoding.names(), len(meta["classes"]), meta.get("task", "classification")
    if not (out / "model.onnx").is_file():
        found = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        raise TrainingFailed("NoModel", f"the trainer wrote no model.onnx to ${OUTPUT_ENV} (it wrote {found})")
    taken = _features(out, features)
    graph = _normalized(out / "model.onnx", features, taken, task)
    if encoding.categorical:
        graph = wrap(graph, encoding)  # the served model takes raw categorical values: one-hot inside
    try:
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        scores = session.run([output_name(task)], feeds(splitfile.load(splits_path)["x_val"], encoding))[0]
    except Exception as error:  # onnxruntime's own kinds: a graph it cannot run on these rows
        raise TrainingFailed("InvalidModel", f"model.onnx does not run on the validation rows: {error}") from error
    _hold(scores, classes, task)
    Path(onnx_path).write_bytes(graph.SerializeToString())
    figures = _metrics(out)
    return {
        "device": str(figures.get("device") or "unknown"),
        "parity": {"checked": False, "why": "a trainer's model is its own reference: Lathe evaluates model.onnx"},
        "onnxSha256": hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest(),
        "params": {"image": trainer.get("image"), "command": [*trainer["command"], *trainer.get("args", [])]},
        "history": [],
        "framework": {"name": "trainer", "image": trainer.get("image")},
        "features": taken,
        "trainerMetrics": figures,
        "cuda": None,
    }


def _features(out: Path, features: list[str]) -> list[str]:
    path = out / "features.json"
    if not path.is_file():
        return features
    try:
        taken = json.loads(path.read_text())
    except ValueError as error:
        raise TrainingFailed("InvalidModel", f"features.json is not JSON: {error}") from error
    unknown = [f for f in taken if f not in features] if isinstance(taken, list) else taken
    if not isinstance(taken, list) or not taken or unknown or len(set(taken)) != len(taken):
        raise TrainingFailed(
            "InvalidModel", f"features.json must list distinct columns of schema.json's features; not {unknown}"
        )
    return taken


def _normalized(path: Path, features: list[str], taken: list[str], task: str = "classification") -> Any:
    """The trainer's graph renamed to Lathe's input and output; a Gather picks its columns from every feature."""
    import onnx
    from onnx import TensorProto, helper

    try:
        graph = onnx.load(str(path))
        onnx.checker.check_model(graph)
    except Exception as error:  # protobuf's DecodeError, onnx's ValidationError and more
        raise TrainingFailed("InvalidModel", f"model.onnx does not load: {error}") from error
    constants = {i.name for i in graph.graph.initializer}
    inputs = [i for i in graph.graph.input if i.name not in constants]
    if len(inputs) != 1 or not graph.graph.output:
        raise TrainingFailed(
            "InvalidModel", f"model.onnx must take one input and give outputs; it takes {[i.name for i in inputs]}"
        )
    source, first = inputs[0], graph.graph.output[0]
    for what, value in (("input", source), ("outputs[0]", first)):
        kind = value.type.tensor_type
        ranks = (1, 2) if what != "input" and task == "regression" else (2,)
        if kind.elem_type != TensorProto.FLOAT or len(kind.shape.dim) not in ranks:
            raise TrainingFailed("InvalidModel", f"model.onnx {what} {value.name!r} must be a float32 matrix")
    width = source.type.tensor_type.shape.dim[1].dim_value
    if width and width != len(taken):
        raise TrainingFailed("InvalidModel", f"model.onnx takes {width} features; it was given {len(taken)}")
    inner = "lathe_trainer_input"
    for node in graph.graph.node:
        node.input[:] = [inner if name == source.name else name for name in node.input]
    indices = [features.index(f) for f in taken]
    graph.graph.initializer.append(helper.make_tensor("lathe_columns", TensorProto.INT64, [len(indices)], indices))
    head = helper.make_node("Gather", [INPUT, "lathe_columns"], [inner], axis=1)
    output = output_name(task)
    if task == "regression" and len(first.type.tensor_type.shape.dim) == 1:  # [batch] values: a column of them
        graph.graph.initializer.append(helper.make_tensor("lathe_column", TensorProto.INT64, [2], [-1, 1]))
        tail = helper.make_node("Reshape", [first.name, "lathe_column"], [output])
    else:
        tail = helper.make_node("Identity", [first.name], [output])
    nodes = [head, *graph.graph.node, tail]
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    graph.graph.input.remove(source)
    graph.graph.input.insert(0, helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, len(features)]))
    del graph.graph.output[:]
    graph.graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, None]))
    if all(o.domain != "" for o in graph.opset_import):  # Gather and Identity are in every opset of the default
        graph.opset_import.append(helper.make_opsetid("", 13))
    return graph


def _hold(scores: np.ndarray, classes: int, task: str = "classification") -> None:
    if task == "regression":
        if scores.ndim != 2 or scores.shape[1] != 1:
            raise TrainingFailed(
                "InvalidModel", f"outputs[0] has shape {list(scores.shape)}: a regressor gives [batch, 1]"
            )
        if not np.isfinite(scores).all():
            raise TrainingFailed("InvalidModel", "outputs[0] has NaN or infinite values on validation rows")
        return
    if scores.ndim != 2 or scores.shape[1] != classes:
        raise TrainingFailed(
            "InvalidModel",
            f"outputs[0] has shape {list(scores.shape)}: a classifier of {classes} classes gives [batch, {classes}]",
        )
    if not np.isfinite(scores).all():
        raise TrainingFailed("InvalidModel", "outputs[0] has NaN or infinite scores on validation rows")
    if classes > 1 and (scores >= 0).all() and np.allclose(scores.sum(axis=1), 1.0, atol=1e-4):
        raise TrainingFailed(
            "InvalidModel",
            "outputs[0] looks like probabilities (every row sums to 1): Lathe takes logits or log-probabilities, "
            "which a softmax turns into probabilities; end the graph with Log",
        )


def _metrics(out: Path) -> dict[str, Any]:
    path = out / "metrics.json"
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text())
    except ValueError as error:
        raise TrainingFailed("InvalidModel", f"metrics.json is not JSON: {error}") from error
    if not isinstance(found, dict):
        raise TrainingFailed("InvalidModel", "metrics.json must be an object of names to figures")
    return found

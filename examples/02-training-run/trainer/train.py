"""A team's own trainer, as Lathe runs it (docs/training.md, "Your own trainer"): softmax regression in NumPy.

Reads $LATHE_INPUT (train.parquet, validation.parquet, schema.json), writes $LATHE_OUTPUT/model.onnx (one float
input [batch, features], logits [batch, classes] first), features.json (it leaves out columns that never vary)
and metrics.json. Arguments: --epochs N --lr X. Nothing here is Lathe's code: only the contract.
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pyarrow.parquet as pq
from onnx import TensorProto, helper

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=200)
parser.add_argument("--lr", type=float, default=0.5)
options = parser.parse_args()
given, out = Path(os.environ["LATHE_INPUT"]), Path(os.environ["LATHE_OUTPUT"])
schema = json.loads((given / "schema.json").read_text())
rng = np.random.default_rng(schema["seed"])


def load(name):
    frame = pq.read_table(given / f"{name}.parquet").to_pandas()
    return frame[schema["features"]].to_numpy("float32"), frame[schema["target"]].to_numpy("int64")


x, y = load("train")
x_val, y_val = load("validation")
keep = x.std(axis=0) > 0  # columns that never vary teach nothing: the model takes the others (features.json)
features = [f for f, k in zip(schema["features"], keep) if k]
mean, std = x[:, keep].mean(axis=0), x[:, keep].std(axis=0)
classes = len(schema["classes"])
weights = rng.normal(0, 0.01, (len(features), classes)).astype("float32")
bias = np.zeros(classes, "float32")
onehot = np.eye(classes, dtype="float32")[y]
z = (x[:, keep] - mean) / std
for _ in range(options.epochs):
    logits = z @ weights + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    weights -= options.lr * z.T @ (p - onehot) / len(z)
    bias -= options.lr * (p - onehot).mean(axis=0)

# The model: (x - mean) / std @ weights + bias, as an ONNX graph of four nodes.
constants = {"mean": mean, "std": std, "weights": weights, "bias": bias}
graph = helper.make_graph(
    [
        helper.make_node("Sub", ["pixels", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "weights"], ["product"]),
        helper.make_node("Add", ["product", "bias"], ["scores"]),
    ],
    "softmax-regression",
    [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, len(features)])],
    [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, classes])],
    [onnx.numpy_helper.from_array(v.astype("float32"), k) for k, v in constants.items()],
)
out.mkdir(parents=True, exist_ok=True)
# IR version 8 (opset 17): what onnxruntime 1.x loads; onnx would otherwise write its newest.
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.save(model, str(out / "model.onnx"))
(out / "features.json").write_text(json.dumps(features))
accuracy = float((((x_val[:, keep] - mean) / std @ weights + bias).argmax(axis=1) == y_val).mean())
(out / "metrics.json").write_text(
    json.dumps({"validationAccuracy": accuracy, "epochs": options.epochs, "device": "cpu"})
)
print(f"trained on {len(x)} rows, {len(features)} of {len(schema['features'])} features; validation {accuracy:.3f}")

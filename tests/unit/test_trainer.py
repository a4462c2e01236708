"""A team's trainer (spec.trainer): its input, its process, and what Lathe holds its model.onnx to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow.parquet as pq
import pytest
import yaml
from onnx import TensorProto, helper

from lathe_pipelines import training
from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps import trainer
from lathe_pipelines.steps.errors import TrainingFailed
from lathe_pipelines.steps.split import split
from tests.conftest import ROOT

FEATURES = ["a", "b", "c"]
COLUMNS = json.dumps({"features": FEATURES, "classes": ["no", "yes"], "target": "label"})
RNG = np.random.default_rng(0)


@pytest.fixture
def splits(tmp_path: Path) -> str:
    x = RNG.normal(size=(60, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    path = tmp_path / "splits.npz"
    np.savez(path, x_train=x[:40], y_train=y[:40], x_val=x[40:50], y_val=y[40:50], x_test=x[50:], y_test=y[50:])
    return str(path)


def model(path: Path, width: int = 3, classes: int = 2, dtype: int = TensorProto.FLOAT, tail: str = "") -> None:
    """x @ w (+ a Softmax when tail says so), input 'x' and output 's' as a trainer might name them."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"])]
    nodes.append(helper.make_node(tail, ["m"], ["s"], axis=1) if tail else helper.make_node("Identity", ["m"], ["s"]))
    weights = helper.make_tensor("w", dtype, [width, classes], list(np.arange(width * classes, dtype=float)))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", dtype, [None, width])],
        [helper.make_tensor_value_info("s", dtype, [None, classes])],
        [weights],
    )
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path / "model.onnx")


def test_the_input_is_the_train_and_validation_splits_by_name(tmp_path: Path, splits: str) -> None:
    trainer.stage(splits, COLUMNS, 7, "sha256:" + "a" * 64, str(tmp_path / "in"))
    train = pq.read_table(tmp_path / "in/train.parquet")
    assert train.column_names == [*FEATURES, "label"] and train.num_rows == 40
    assert pq.read_table(tmp_path / "in/validation.parquet").num_rows == 10  # the test split stays with Lathe
    schema = json.loads((tmp_path / "in/schema.json").read_text())
    assert schema["features"] == FEATURES and schema["classes"] == ["no", "yes"] and schema["seed"] == 7


def test_the_model_takes_every_feature_by_name_and_gives_logits(tmp_path: Path, splits: str) -> None:
    model(tmp_path / "out", width=2)
    (tmp_path / "out/features.json").write_text(json.dumps(["c", "a"]))  # a subset, in its own order
    (tmp_path / "out/metrics.json").write_text(json.dumps({"device": "cuda", "loss": 0.1}))
    summary = trainer.check(splits, COLUMNS, str(tmp_path / "out"), str(tmp_path / "m.onnx"), {"command": ["t"]})
    assert summary["features"] == ["c", "a"] and summary["device"] == "cuda"
    assert summary["trainerMetrics"]["loss"] == 0.1
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"] and [o.name for o in session.get_outputs()] == ["logits"]
    x = np.array([[1.0, 10.0, 100.0]], dtype="float32")
    # w = [[0, 1], [2, 3]] over (c, a): [100, 1] @ w
    assert session.run(None, {"input": x})[0].tolist() == [[2.0, 103.0]]


@pytest.mark.parametrize(
    ("make", "reason", "message"),
    [
        (lambda out: out.mkdir(), "NoModel", r"wrote no model.onnx to \$LATHE_OUTPUT \(it wrote \[\]\)"),
        (lambda out: (out.mkdir(), (out / "model.onnx").write_text("not onnx")), "InvalidModel", "does not load"),
        (lambda out: model(out, width=4), "InvalidModel", "takes 4 features; it was given 3"),
        (lambda out: model(out, classes=3), "InvalidModel", r"shape \[10, 3\]: a classifier of 2 classes"),
        (lambda out: model(out, dtype=TensorProto.DOUBLE), "InvalidModel", "'x' must be a float32 matrix"),
        (lambda out: model(out, tail="Softmax"), "InvalidModel", "looks like probabilities"),
        (
            lambda out: (model(out), (out / "features.json").write_text('["a", "z"]')),
            "InvalidModel",
            r"distinct columns of schema.json's features; not \['z'\]",
        ),
        (lambda out: (model(out), (out / "metrics.json").write_text("[1]")), "InvalidModel", "metrics.json must be"),
    ],
)
def test_what_breaks_the_contract_is_refused_with_why(
    tmp_path: Path, splits: str, make: object, reason: str, message: str
) -> None:
    make(tmp_path / "out")  # type: ignore[operator]
    with pytest.raises(TrainingFailed, match=message) as failed:
        trainer.check(splits, COLUMNS, str(tmp_path / "out"), str(tmp_path / "m.onnx"), {"command": ["t"]})
    assert failed.value.reason == reason


def test_the_process_gets_its_files_and_env_but_not_the_stores_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATHE_STORE_SECRET_KEY", "s3cret")
    script = "import json, os; json.dump(dict(os.environ), open(os.environ['LATHE_OUTPUT'] + '/env.json', 'w'))"
    spec = {"command": ["python", "-c", script], "env": {"EPOCHS": "3"}, "workingDir": str(tmp_path)}
    assert trainer.run(spec, str(tmp_path / "in"), str(tmp_path / "out")) >= 0
    env = json.loads((tmp_path / "out/env.json").read_text())
    assert env["EPOCHS"] == "3" and env["LATHE_INPUT"] == str(tmp_path / "in") and "LATHE_STORE_SECRET_KEY" not in env


def test_a_failing_command_ends_with_its_last_lines(tmp_path: Path) -> None:
    script = "import sys\nfor i in range(50): print('line', i)\nsys.exit(4)"
    with pytest.raises(TrainingFailed, match="exited with 4; its last lines:\nline 30\n") as failed:
        trainer.run({"command": [sys.executable, "-c", script]}, str(tmp_path), str(tmp_path / "o"))
    assert "line 29" not in str(failed.value) and "line 49" in str(failed.value)
    with pytest.raises(TrainingFailed, match="cannot start no-such-trainer"):
        trainer.run({"command": ["no-such-trainer"]}, str(tmp_path), str(tmp_path / "o"))


def test_on_kfp_the_trainer_is_a_container_step_in_its_own_image_on_the_training_pool() -> None:
    spec = {"image": "acme/t:1", "command": ["python", "t.py"], "args": ["--x", "1"], "env": {"A": "b"}}
    ir, platform = yaml.safe_load_all(
        training.compile_yaml(training.build({"gpus": 1, "trainer": {**spec, "workingDir": "/w"}}))
    )
    container = ir["deploymentSpec"]["executors"]["exec-trainer-container"]["container"]
    assert container["image"] == "acme/t:1" and container["env"] == [{"name": "A", "value": "b"}]
    assert container["command"][:2] == ["sh", "-c"] and "cd /w && exec" in container["command"][2]
    assert container["args"][2:] == ["python", "t.py", "--x", "1"]
    assert container["resources"]["accelerator"]["count"] == "1"
    secrets = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert "exec-trainer-container" not in secrets and "exec-check-trainer-model" in secrets  # no store keys
    assert "exec-train-model" not in ir["deploymentSpec"]["executors"]


def test_the_compiled_container_step_runs_the_example_trainer_as_kfps_launcher_would(tmp_path: Path) -> None:
    """The IR's trainer container (command, args, artifact placeholders resolved to paths, as KFP's launcher does
    in the pod) trains the example on digits; the check step takes its model. Only the image is not used here."""
    example = yaml.safe_load((ROOT / "examples/02-training-run/trainingrun-trainer.yaml").read_text())["spec"]
    spec = {**example["trainer"], "args": ["--epochs", "150", "--lr", "0.5"], "workingDir": str(ROOT)}
    ir, _ = yaml.safe_load_all(training.compile_yaml(training.build({"trainer": spec})))
    container = ir["deploymentSpec"]["executors"]["exec-trainer-container"]["container"]
    parts = split(digits(), "label", 42)
    splits = tmp_path / "splits.npz"
    np.savez(splits, x_train=parts.x_train, y_train=parts.y_train, x_val=parts.x_val, y_val=parts.y_val)
    columns = json.dumps({"features": parts.features, "classes": parts.classes, "target": "label"})
    trainer.stage(str(splits), columns, 42, "sha256:0", str(tmp_path / "in"))
    paths = {
        "{{$.inputs.artifacts['trainer_input'].path}}": str(tmp_path / "in"),
        "{{$.outputs.artifacts['trainer_output'].path}}": str(tmp_path / "out"),
    }
    assert set(paths) <= set(container["args"]), container["args"]
    command = [*container["command"], *(paths.get(a, a) for a in container["args"])]
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        **{e["name"]: e["value"] for e in container.get("env", [])},
    }
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    summary = trainer.check(str(splits), columns, str(tmp_path / "out"), str(tmp_path / "model.onnx"), spec)
    assert summary["trainerMetrics"] and 0 < len(summary["features"]) <= 64
    logits = ort.InferenceSession(str(tmp_path / "model.onnx")).run(["logits"], {"input": parts.x_val})[0]
    assert float((logits.argmax(1) == parts.y_val).mean()) > 0.9

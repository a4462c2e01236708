"""The Job backend's trainer in a container of its own: the pod it renders, and both sides of the handover run
for real (the trainer's wrapper under sh, the pipeline's step in this process) over two shared folders."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from lathe_core import handover as contract
from lathe_core.settings import StoreSettings
from lathe_operator.reconcile import jobs
from lathe_pipelines.steps import handover
from lathe_pipelines.steps.errors import TrainingFailed

TRAINER = {"image": "acme/trainer:1", "command": ["python", "train.py"], "args": ["--epochs", "3"], "env": {"A": "1"}}
RESOURCES = {"cpu": "2", "gpus": 1, "trainer": TRAINER}


def pod() -> dict[str, Any]:
    request = jobs.training_request("ml", "r-1", {"report_key": "k"}, RESOURCES, False, {})
    job = jobs.manifest(request, image="pipelines:1", service_account="lathe-jobs", store=StoreSettings())
    return job["spec"]["template"]["spec"]


def test_the_trainer_gets_its_own_container_without_keys_token_or_the_pipelines_files() -> None:
    spec = pod()
    main, trainer = spec["containers"]
    assert spec["automountServiceAccountToken"] is False and "shareProcessNamespace" not in spec
    assert (trainer["name"], trainer["image"]) == ("trainer", "acme/trainer:1")  # the team's image, as on KFP
    assert trainer["args"] == ["python", "train.py", "--epochs", "3"]
    assert not any("valueFrom" in e for e in trainer["env"])  # no Secret reaches it
    assert {e["name"]: e["value"] for e in trainer["env"]}["LATHE_INPUT"] == contract.INPUT
    assert [(m["name"], m.get("readOnly", False)) for m in trainer["volumeMounts"]] == [
        ("trainer-input", True),
        ("trainer-output", False),
        ("trainer-tmp", False),
    ]  # not the pipeline's /tmp, where the test split lies
    assert (
        trainer["resources"]["limits"]["nvidia.com/gpu"] == "1" and "nvidia.com/gpu" not in main["resources"]["limits"]
    )
    assert any(e.get("valueFrom", {}).get("secretKeyRef") for e in main["env"])  # the pipeline keeps its keys
    assert {e["name"] for e in main["env"]} >= {contract.INPUT_ENV, contract.OUTPUT_ENV}
    assert trainer["securityContext"] == main["securityContext"] == jobs.RESTRICTED


def test_a_run_without_a_trainer_has_one_container() -> None:
    request = jobs.training_request("ml", "r-1", {"report_key": "k"}, {"cpu": "2"}, False, {})
    spec = jobs.manifest(request, image="pipelines:1", service_account="j", store=StoreSettings())
    assert [c["name"] for c in spec["spec"]["template"]["spec"]["containers"]] == ["train"]


def sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> tuple[subprocess.Popen[str], Path, Path]:
    inbox, outbox = tmp_path / "input", tmp_path / "output"
    inbox.mkdir(), outbox.mkdir()
    monkeypatch.setenv(contract.INPUT_ENV, str(inbox))
    monkeypatch.setenv(contract.OUTPUT_ENV, str(outbox))
    env = {"PATH": os.environ["PATH"], "LATHE_INPUT": str(inbox), "LATHE_OUTPUT": str(outbox)}
    env["LATHE_WORKING_DIR"] = str(tmp_path)
    command = ["sh", "-c", contract.WRAPPER, "lathe-trainer", sys.executable, "-c", script]
    with open(tmp_path / "stdout.txt", "w") as stdout:  # the container's log, as kubectl logs -c trainer shows it
        return subprocess.Popen(command, env=env, stdout=stdout, text=True), inbox, outbox


def test_the_trainer_reads_its_input_and_its_output_comes_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = (
        "import os, pathlib; src = pathlib.Path(os.environ['LATHE_INPUT'], 'schema.json').read_text();"
        "pathlib.Path(os.environ['LATHE_OUTPUT'], 'model.onnx').write_text('model of ' + src);"
        "print('trained in', os.getcwd())"
    )
    trainer, _, _ = sides(tmp_path, monkeypatch, script)
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "schema.json").write_text("digits")
    seconds = handover.run(str(staged), str(tmp_path / "out"), poll=0.05)
    assert trainer.wait(30) == 0 and seconds >= 0
    assert (tmp_path / "out" / "model.onnx").read_text() == "model of digits"
    assert (
        not (tmp_path / "out" / "exit").exists() and f"trained in {tmp_path}" in (tmp_path / "stdout.txt").read_text()
    )


def test_a_failing_trainer_fails_the_step_with_its_last_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, _, _ = sides(tmp_path, monkeypatch, "import sys; print('x' * 200_000); print('out of ideas'); sys.exit(3)")
    (tmp_path / "staged").mkdir()
    with pytest.raises(TrainingFailed) as error:
        handover.run(str(tmp_path / "staged"), str(tmp_path / "out"), poll=0.05)
    assert trainer.wait(30) == 0 and error.value.reason == "TrainerFailed"
    assert "exited with 3" in str(error.value) and str(error.value).endswith("out of ideas")
    assert len(str(error.value)) < 70_000  # the log is read from its end, 64 KiB at most


def test_a_pipeline_that_ends_early_lets_the_waiting_trainer_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer, _, outbox = sides(tmp_path, monkeypatch, "raise SystemExit('never runs')")
    threading.Timer(0.3, handover.cancel).start()
    assert trainer.wait(30) == 0 and not (outbox / "exit").exists()

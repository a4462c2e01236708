"""A team's own trainer (TrainingRun ``spec.trainer``): stage its input, run it, hold its model.onnx to the contract.

On the KFP backend the trainer is a container step on the training pool, in the team's image. With kfp.local,
``run_trainer`` hands it to a container of its own in the Job's pod (the Job backend, ``steps.handover``) or,
in local mode, runs the command as a process of the step (no image of its own).
"""

import shlex
from typing import Any

from kfp import dsl

from . import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def stage_trainer_input(
    splits: dsl.Input[dsl.Dataset],
    columns: str,
    seed: int,
    dataset_version: str,
    trainer_input: dsl.Output[dsl.Dataset],
) -> None:
    """train.parquet, validation.parquet and schema.json: what the trainer reads from $LATHE_INPUT."""
    from lathe_pipelines.steps import trainer as step

    step.stage(splits.path, columns, seed, dataset_version, trainer_input.path)


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def run_trainer(
    trainer_input: dsl.Input[dsl.Dataset], trainer: dict, report_key: str, trainer_output: dsl.Output[dsl.Artifact]
) -> float:
    """The trainer's command as a process; returns its seconds."""
    from lathe_pipelines.steps import reports
    from lathe_pipelines.steps import trainer as step

    with reports.failures(report_key, "trainer"):
        return step.run(trainer, trainer_input.path, trainer_output.path)


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def check_trainer_model(
    splits: dsl.Input[dsl.Dataset],
    columns: str,
    trainer_output: dsl.Input[dsl.Artifact],
    trainer: dict,
    seconds: float,
    report_key: str,
    onnx: dsl.Output[dsl.Model],
) -> str:
    """model.onnx held to the contract and in Lathe's form; the training summary as JSON (seconds < 0: unknown)."""
    import json

    from lathe_pipelines.steps import reports
    from lathe_pipelines.steps import trainer as step

    with reports.failures(report_key, "trainer-model"):
        summary = step.check(splits.path, columns, trainer_output.path, onnx.path, trainer)
    return json.dumps({**summary, "seconds": round(seconds, 3) if seconds >= 0 else None})


def container(trainer: dict[str, Any]) -> Any:
    """The trainer as a kfp container component in its own image. kfp passes artifacts as paths in arguments,
    so a shell sets $LATHE_INPUT and $LATHE_OUTPUT from the first two and runs the command with the rest."""
    into = f"cd {shlex.quote(trainer['workingDir'])} && " if trainer.get("workingDir") else ""
    script = f'export LATHE_INPUT="$1" LATHE_OUTPUT="$2" && shift 2 && mkdir -p "$LATHE_OUTPUT" && {into}exec "$@"'
    image, command = trainer["image"], [*trainer["command"], *trainer.get("args", [])]

    @dsl.container_component
    def trainer_container(trainer_input: dsl.Input[dsl.Dataset], trainer_output: dsl.Output[dsl.Artifact]):  # noqa: ANN202
        return dsl.ContainerSpec(
            image=image,
            command=["sh", "-c", script, "lathe-trainer"],
            args=[trainer_input.path, trainer_output.path, *command],
        )

    return trainer_container

"""The training pipeline: prepare -> train, export and check parity (GPU pool) -> evaluate the ONNX model -> gate and register.

``build`` makes the pipeline for one TrainingRun's resources (accelerator, limits, node
selector, tolerations are compile-time settings in kfp); ``compile_yaml`` gives the IR
YAML that the KFP API runs (``compiled``: once per settings, from any thread); ``run_local`` executes it for real with kfp.local.
"""

# No `from __future__ import annotations`: kfp reads the pipeline signature's real types.

import functools
import hashlib
import json
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp import compiler, dsl, kubernetes

from lathe_core.settings import SECRET_KEYS

from .components.evaluate import evaluate_model
from .components.prepare import prepare_data
from .components.register import gate_and_register
from .components.train import train_model
from .components.trainer import check_trainer_model, container, run_trainer, stage_trainer_input

GPU_RESOURCE = "nvidia.com/gpu"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"  # node label that names the GPU model


@dataclass(frozen=True)
class _Steps:
    """How the pipeline's tasks are configured: store access, caching, the training step's placement."""

    resources: dict[str, Any]
    store_secret: str
    store_env: dict[str, str]
    caching: bool
    accelerator_label: str
    local: bool

    def store_access(self, task: dsl.PipelineTask) -> dsl.PipelineTask:
        kubernetes.use_secret_as_env(task, secret_name=self.store_secret, secret_key_to_env=SECRET_KEYS)
        for name, value in self.store_env.items():
            task.set_env_variable(name, value)
        return task.set_caching_options(self.caching)

    def built_in(self, prepared: dsl.PipelineTask, **inputs: Any) -> dsl.PipelineTask:
        """Lathe's own training step (PyTorch, scikit-learn, XGBoost, LightGBM) on the training pool."""
        trained = self.store_access(train_model(splits=prepared.outputs["splits"], **inputs))
        place(trained, self.resources, self.accelerator_label)
        return trained

    def own_trainer(self, prepared: dsl.PipelineTask, seed: Any, version: Any, report_key: Any) -> dsl.PipelineTask:
        """Stage the input, run the team's trainer on the training pool, check its model: the task whose
        outputs are the training step's (``onnx`` and the summary). The trainer itself gets no store keys."""
        trainer = self.resources["trainer"]
        columns = prepared.outputs["Output"]
        staged = stage_trainer_input(
            splits=prepared.outputs["splits"], columns=columns, seed=seed, dataset_version=version
        ).set_caching_options(self.caching)
        if self.local:
            ran = run_trainer(trainer_input=staged.outputs["trainer_input"], trainer=trainer, report_key=report_key)
            self.store_access(ran)  # for its failure report: the command's own environment is the trainer's alone
            seconds = ran.outputs["Output"]
        else:
            ran = container(trainer)(trainer_input=staged.outputs["trainer_input"]).set_caching_options(self.caching)
            for name, value in (trainer.get("env") or {}).items():
                ran.set_env_variable(name, value)
            seconds = -1.0
        place(ran, self.resources, self.accelerator_label)
        return self.store_access(
            check_trainer_model(
                splits=prepared.outputs["splits"],
                columns=columns,
                trainer_output=ran.outputs["trainer_output"],
                trainer=trainer,
                seconds=seconds,
                report_key=report_key,
            )
        )


def build(
    resources: dict[str, Any] | None = None,
    store_secret: str = "lathe-store",
    store_env: dict[str, str] | None = None,
    caching: bool = False,
    accelerator_label: str = ACCELERATOR_LABEL,
    local: bool = False,
) -> Callable[..., Any]:
    """The pipeline function for these resources (TrainingRun ``spec.resources`` in YAML form, with
    ``trainer``, its ``spec.trainer``, when the team brings its own training code).

    ``gpus`` becomes an nvidia.com/gpu limit on the training step and ``acceleratorType``
    a node selector on ``accelerator_label``, as Kubeflow documents for GPU node pools.
    ``local``: for kfp.local, which runs no container of its own: the trainer's command runs as a process.
    """
    steps = _Steps(resources or {}, store_secret, store_env or {}, caching, accelerator_label, local)

    @dsl.pipeline(name="lathe-training", description="Train, evaluate, export to ONNX, gate and register a model")
    def training_pipeline(
        namespace: str,
        dataset: str,
        dataset_version: str,
        target: str,
        model_name: str,
        model_type: str,
        hyperparameters: dict,
        seed: int,
        gates: list,
        baseline_version: int,
        lineage: dict,
        report_key: str,
        task: str = "classification",
    ) -> str:
        prepared = steps.store_access(
            prepare_data(
                namespace=namespace, dataset=dataset, version=dataset_version, target=target, seed=seed, task=task
            )
        )
        if steps.resources.get("trainer"):
            trained = steps.own_trainer(prepared, seed, dataset_version, report_key)
        else:
            trained = steps.built_in(
                prepared,
                model_type=model_type,
                hyperparameters=hyperparameters,
                seed=seed,
                report_key=report_key,
                task=task,
            )
        evaluated = evaluate_model(
            splits=prepared.outputs["splits"], onnx=trained.outputs["onnx"], task=task
        ).set_caching_options(caching)
        registered = steps.store_access(
            gate_and_register(
                onnx=trained.outputs["onnx"],
                evaluation=evaluated.outputs["Output"],
                training=trained.outputs["Output"],
                columns=prepared.outputs["Output"],
                gates=gates,
                namespace=namespace,
                model_name=model_name,
                baseline_version=baseline_version,
                lineage=lineage,
                report_key=report_key,
            )
        )
        return registered.output

    return training_pipeline


def place(task: dsl.PipelineTask, resources: dict[str, Any], accelerator_label: str = ACCELERATOR_LABEL) -> None:
    """The training step's resources and node placement, from TrainingRun ``spec.resources``."""
    if resources.get("gpus"):
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(int(resources["gpus"]))
    if resources.get("acceleratorType"):
        kubernetes.add_node_selector(task, label_key=accelerator_label, label_value=resources["acceleratorType"])
    if resources.get("cpu"):
        task.set_cpu_limit(str(resources["cpu"]))
    if resources.get("memory"):
        task.set_memory_limit(str(resources["memory"]))
    for key, value in (resources.get("nodeSelector") or {}).items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in resources.get("tolerations") or []:
        kubernetes.add_toleration(
            task,
            key=toleration.get("key"),
            operator=toleration.get("operator", "Equal"),
            value=toleration.get("value"),
            effect=toleration.get("effect"),
            toleration_seconds=toleration.get("tolerationSeconds"),
        )


def compile_yaml(pipeline: Callable[..., Any]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        return path.read_text()


_COMPILING = threading.Lock()  # kfp compiles inside one process-wide pipeline context: two at once "nest"


@functools.lru_cache(maxsize=64)
def _compiled(settings: str) -> str:
    resources, store_secret, store_env, caching, accelerator_label = json.loads(settings)
    return compile_yaml(build(resources, store_secret, store_env, caching, accelerator_label))


def compiled(
    resources: dict[str, Any] | None = None,
    store_secret: str = "lathe-store",
    store_env: dict[str, str] | None = None,
    caching: bool = False,
    accelerator_label: str = ACCELERATOR_LABEL,
) -> str:
    """``compile_yaml(build(...))``, safe from any thread and compiled once per process and settings.

    An operator submits from many threads at once; kfp's compiler cannot (a second compile
    while one runs fails with "Nested pipelines are not allowed")."""
    settings = json.dumps([resources or {}, store_secret, store_env or {}, caching, accelerator_label], sort_keys=True)
    with _COMPILING:
        return _compiled(settings)


def spec_hash(pipeline_yaml: str) -> str:
    return hashlib.sha256(pipeline_yaml.encode()).hexdigest()


def run_local(arguments: dict[str, Any], pipeline_root: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute the pipeline with kfp.local's subprocess runner in this environment; return the register result."""
    import warnings

    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=pipeline_root, raise_on_error=True)
    with warnings.catch_warnings():
        # This environment is the pipelines image's (same lock file), which kfp cannot know.
        warnings.filterwarnings("ignore", message=".*custom or non-Python base image", category=RuntimeWarning)
        task = build(resources, local=True)(**arguments)
    return dict(json.loads(task.output))

"""Train the PyTorch model, export it to ONNX and check parity (the step that needs the GPU node pool)."""

from kfp import dsl

from . import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def train_model(
    splits: dsl.Input[dsl.Dataset],
    model_type: str,
    hyperparameters: dict,
    seed: int,
    report_key: str,
    model: dsl.Output[dsl.Model],
    onnx: dsl.Output[dsl.Model],
    task: str = "classification",
) -> str:
    """Write model.pt to ``model`` and model.onnx to ``onnx``; return device, history and parity as JSON."""
    from lathe_pipelines.steps import train as step

    return step.run(splits.path, model_type, hyperparameters, seed, model.path, onnx.path, report_key, task)

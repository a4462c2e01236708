"""Evaluate the exported ONNX model on the test split with onnxruntime: the artifact that will be served."""

from kfp import dsl

from . import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def evaluate_model(
    splits: dsl.Input[dsl.Dataset],
    onnx: dsl.Input[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    task: str = "classification",
) -> str:
    """Log accuracy, macro F1, per-class recall and loss, and return them as JSON."""
    import json

    from lathe_pipelines.steps import evaluate as step

    result = step.run(splits.path, onnx.path, task)
    for name, value in result.items():
        if isinstance(value, float):  # the metrics; "predicted" (class counts) goes to the model card
            metrics.log_metric(name, value)
    return json.dumps(result)

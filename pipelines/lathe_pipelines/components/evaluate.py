"""Evaluate on the test split, export ONNX and check onnxruntime parity (CPU)."""

from kfp import dsl

from . import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def evaluate_and_export(splits: dsl.Input[dsl.Dataset], model: dsl.Input[dsl.Model], report_key: str,
                        onnx: dsl.Output[dsl.Model], metrics: dsl.Output[dsl.Metrics]) -> str:
    """Write model.onnx to ``onnx``, log metrics, and return metrics + parity as JSON."""
    import json

    from lathe_pipelines.steps import evaluate_step as step

    result = step.run(splits.path, model.path, onnx.path, report_key)
    for name, value in result["metrics"].items():
        metrics.log_metric(name, value)
    return json.dumps(result)

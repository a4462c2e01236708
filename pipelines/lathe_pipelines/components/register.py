"""Gate the metrics against their ranges and the baseline, then register the model with its lineage."""

from kfp import dsl

from . import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def gate_and_register(
    onnx: dsl.Input[dsl.Model],
    evaluation: str,
    training: str,
    columns: str,
    gates: list,
    namespace: str,
    model_name: str,
    baseline_version: int,
    lineage: dict,
    report_key: str,
) -> str:
    """Return the gate results and, when all pass, the registered version, as JSON."""
    from lathe_pipelines.steps import register as step

    return step.run(
        onnx.path, evaluation, training, columns, gates, namespace, model_name, baseline_version, lineage, report_key
    )

"""Load a Dataset version from the object store and split it, seeded and stratified."""

from kfp import dsl

from . import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def prepare_data(
    namespace: str,
    dataset: str,
    version: str,
    target: str,
    seed: int,
    splits: dsl.Output[dsl.Dataset],
    task: str = "classification",
) -> str:
    """Write train/val/test arrays to ``splits`` (npz) and return the column metadata as JSON."""
    from lathe_pipelines.steps import prepare as step

    return step.run(namespace, dataset, version, target, seed, splits.path, task)

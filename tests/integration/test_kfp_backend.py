"""The KFP backend under an operator's threads: many TrainingRuns submitted at once (the fake KFP API, through kfp.Client)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

from lathe_operator.backends.pipelines_kfp import KfpPipelines
from lathe_pipelines import training
from tests.servers.kfp_fake import FakeKfp


@pytest.fixture
def kfp() -> Iterator[FakeKfp]:
    fake = FakeKfp().start()
    yield fake
    fake.stop()


def _arguments() -> dict[str, Any]:
    """A value for every parameter the pipeline declares (the fake refuses a run that misses one)."""
    spec = next(yaml.safe_load_all(training.compiled()))
    declared = spec["root"]["inputDefinitions"]["parameters"]
    values = {"STRING": "x", "NUMBER_INTEGER": 1, "STRUCT": {}, "LIST": []}
    return {name: values[p["parameterType"]] for name, p in declared.items()}


@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")  # kfp.Client's note on every start
def test_runs_submitted_together_each_compile_their_own_pipeline_into_one_experiment(kfp: FakeKfp) -> None:
    """kfp's compiler is process-wide state ("Nested pipelines are not allowed" when two threads compile at
    once), and its create_experiment looks the name up before creating it: 16 submissions from 8 threads,
    each with its own CPU limit, must give 16 runs with their own pipelines and one experiment."""
    backend, arguments = KfpPipelines(kfp.url), _arguments()

    def submit(i: int) -> str:
        return backend.submit("team-a", f"run-{i}", arguments, {"cpu": str(i + 1)}, caching=False)

    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(submit, range(16)))

    assert len(set(run_ids)) == 16 and len(kfp.runs) == 16
    assert [e["display_name"] for e in kfp.experiments.values()] == ["team-a"]
    for i, run_id in enumerate(run_ids):
        run = kfp.runs[run_id]
        assert run["display_name"] == f"run-{i}"
        spec = run["pipeline_spec"]
        executors = spec.get("pipeline_spec", spec)["deploymentSpec"]["executors"]
        limits = {e["container"].get("resources", {}).get("cpuLimit") for e in executors.values()}
        assert float(i + 1) in limits, limits
    # submitted again (an operator restarted mid-way): found by name, not created twice
    assert submit(3) == run_ids[3] and len(kfp.runs) == 16


def test_compiled_pipelines_are_the_compiler_output_for_their_settings() -> None:
    gpu = training.compiled({"gpus": 1, "acceleratorType": "nvidia-tesla-t4"})
    assert gpu == training.compile_yaml(training.build({"gpus": 1, "acceleratorType": "nvidia-tesla-t4"}))
    assert gpu != training.compiled() and training.compiled(caching=True) != training.compiled()

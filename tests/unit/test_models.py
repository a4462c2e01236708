"""The pydantic models accept the examples and reject what the CRD also rejects."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lathe_operator.api.v1alpha1 import KINDS, Dataset, TrainingRun
from tests.conftest import EXAMPLES, load_yaml

BY_KIND = {model.kind_name: model for model in KINDS}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_examples_validate_and_round_trip(path: Path) -> None:
    manifest = load_yaml(path)
    resource = BY_KIND[manifest["kind"]].model_validate(manifest)
    again = BY_KIND[manifest["kind"]].model_validate(resource.dump())
    assert again == resource


def test_every_kind_has_an_example() -> None:
    assert {load_yaml(p)["kind"] for p in EXAMPLES} == set(BY_KIND)


def test_yaml_is_camel_case_and_python_snake_case() -> None:
    run = TrainingRun.model_validate(
        {"kind": "TrainingRun", "spec": {"dataset": {"name": "d"}, "model": {"name": "m"}, "baselineVersion": 3}}
    )
    assert run.spec.baseline_version == 3
    assert "baselineVersion" in run.spec.dump()


@pytest.mark.parametrize(
    "spec",
    [
        {"source": {"uri": "ftp://x/y"}},
        {"source": {"uri": "s3://b/k", "format": "xlsx"}},
        {"source": {"uri": "s3://b/k"}, "expectations": [{"type": "not_an_expectation"}]},
        {"source": {"uri": "s3://b/k"}, "retention": {"keep": 0}},
        {"source": {"uri": "s3://b/k"}, "unknownField": 1},
        # only the documented keys of a credentials Secret: not a ServiceAccount token, not another key
        {"source": {"uri": "s3://raw/k", "credentialsSecret": {"name": "sa-token", "accessKeyKey": "token"}}},
        {"source": {"uri": "s3://raw/k", "credentialsSecret": {"name": "lathe-store", "secretKeyKey": "accessKey"}}},
    ],
)
def test_invalid_dataset_specs_are_rejected(spec: dict) -> None:
    with pytest.raises(ValidationError):
        Dataset.model_validate({"kind": "Dataset", "spec": spec})

"""The CRDs are generated from the models, checked in, and structural."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from lathe_operator.api.crd import all_crds
from lathe_operator.api.v1alpha1 import KINDS
from tests.conftest import ROOT

FORBIDDEN = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"}


@pytest.mark.parametrize("directory", ["charts/lathe/crds", "manifests/crds"])
def test_checked_in_crds_match_the_models(directory: str) -> None:
    generated = all_crds()
    on_disk = {p.name: p.read_text() for p in (ROOT / directory).glob("*.yaml")}
    assert set(on_disk) == set(generated), "run `make crds`"
    for name, text in generated.items():
        assert on_disk[name] == text, f"{directory}/{name} is stale: run `make crds`"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, node)]
    for key, child in (node.get("properties") or {}).items():
        nodes += _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        nodes += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        nodes += _walk(node["additionalProperties"], f"{path}{{}}")
    return nodes


@pytest.mark.parametrize("text", all_crds().values(), ids=list(all_crds()))
def test_schemas_are_structural(text: str) -> None:
    crd = yaml.safe_load(text)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert not FORBIDDEN & set(node), f"{path} has {FORBIDDEN & set(node)}"
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert node.get("additionalProperties") is not False, path
        if path.count(".") >= 2 and path.split(".")[1] == "spec":
            assert node.get("description") or path.endswith(("[]", "{}")), f"{path} has no description"


def test_every_kind_has_printer_columns_short_names_and_category() -> None:
    for model in KINDS:
        names = yaml.safe_load(all_crds()[f"lathe.dev_{model.plural}.yaml"])["spec"]["names"]
        assert names["categories"] == ["lathe"] and names["shortNames"]
        columns = [c["name"] for c in model.printer_columns]
        assert {"Ready", "Age"} <= set(columns)

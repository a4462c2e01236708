"""Specs generated from the CRDs' own schemas, by the thousand, sent to the real API server (dry run).

Each is refused with a ``spec.`` field named, or admitted; every admitted object (with the server's
defaults) parses in the operator's model and plans to a Ready condition with a reason, so none can
crash the operator. Values come from each field's schema, and a share of them lies just outside it
(past a bound, off a pattern, off an enum), so both sides of each rule are tried.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.rest import ApiException

from lathe_core.runs import RunState
from lathe_operator.api.v1alpha1 import Dataset, DriftMonitor, ModelDeployment, TrainingRun
from lathe_operator.reconcile import dataset, drift_monitor, model_deployment, training_run
from lathe_operator.reconcile.plan import DatasetView
from tests.conftest import ROOT

EXAMPLES = 750  # per kind: 3,000 specs a run
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KINDS = {
    "Dataset": (Dataset, "datasets"),
    "TrainingRun": (TrainingRun, "trainingruns"),
    "ModelDeployment": (ModelDeployment, "modeldeployments"),
    "DriftMonitor": (DriftMonitor, "driftmonitors"),
}
READY = DatasetView(exists=True, current_version="sha256:" + "a" * 64, target="label")
PLANS = {
    "Dataset": lambda o: dataset.plan(o, dataset.DatasetObserved(now=NOW, run=RunState("Absent"))),
    "TrainingRun": lambda o: training_run.plan(o, training_run.TrainingRunObserved(now=NOW, dataset=READY)),
    "ModelDeployment": lambda o: model_deployment.plan(o, model_deployment.DeploymentObserved(now=NOW)),
    "DriftMonitor": lambda o: drift_monitor.plan(o, drift_monitor.DriftObserved(now=NOW, reference=READY)),
}


def spec_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / f"manifests/crds/lathe.dev_{plural}.yaml").read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])


def values(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly what the schema allows, sometimes just outside it."""
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), st.just("Bogus")) if depth < 8 else st.nothing()
    kind = schema.get("type")
    if kind == "object":
        return objects(schema, depth)
    if kind == "array":
        most = min(int(schema.get("maxItems", 3)), 3)
        return st.lists(values(schema.get("items", {}), depth + 1), max_size=most + (1 if most < 3 else 0))
    if kind == "integer":
        low, high = schema.get("minimum", -5), schema.get("maximum", 10**6)
        return st.one_of(st.integers(low, high), st.sampled_from([low - 1, high + 1]))
    if kind == "number":
        low, high = schema.get("minimum", -5.0), schema.get("maximum", 1e6)
        inside = st.floats(low, high, allow_nan=False, allow_infinity=False)
        return st.one_of(inside, st.sampled_from([low - 0.5, high + 0.5, low, high]))
    if kind == "boolean":
        return st.booleans()
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(-1, 100), st.text(max_size=6))
    if kind == "string":
        longest = int(schema.get("maxLength", 40))
        junk = st.text(max_size=min(longest + 2, 80))
        if "pattern" in schema:
            shaped = st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= longest + 2)
            return st.one_of(shaped, shaped, junk)
        return junk
    return st.just({})  # preserve-unknown-fields without a type: nothing to aim at


def objects(schema: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties") or {}
    if not properties:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return st.dictionaries(
                st.from_regex(r"[a-z][a-z0-9./-]{0,15}", fullmatch=True), values(extra, depth + 1), max_size=2
            )
        return st.just({})
    required = set(schema.get("required") or [])
    if depth > 6:
        return st.fixed_dictionaries({k: values(properties[k], depth + 1) for k in required})
    return st.fixed_dictionaries(
        {k: values(properties[k], depth + 1) for k in required},
        optional={k: values(v, depth + 1) for k, v in properties.items() if k not in required},
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_generated_specs_are_refused_with_a_field_or_admitted_and_planned(
    kind: str, api: client.ApiClient, namespace: str
) -> None:
    model, plural = KINDS[kind]
    objects_api = client.CustomObjectsApi(api)
    seen: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(spec=objects(spec_schema(plural), 0))
    def check(spec: dict[str, Any]) -> None:
        body = {"apiVersion": "lathe.dev/v1alpha1", "kind": kind, "metadata": {"name": "generated"}, "spec": spec}
        try:
            admitted = objects_api.create_namespaced_custom_object(
                "lathe.dev", "v1alpha1", namespace, plural, body, dry_run="All"
            )
        except ApiException as error:
            assert error.status == 422, (error.status, error.body[:500])
            assert "spec." in error.body or "spec:" in error.body, error.body[:500]
            seen["refused"] += 1
            return
        seen["admitted"] += 1
        admitted["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000000")
        admitted["metadata"].setdefault("generation", 1)
        parsed = model.model_validate(admitted)  # the operator's model takes what the API server took
        planned = PLANS[kind](parsed)
        ready = next(c for c in planned.status["conditions"] if c["type"] == "Ready")
        assert ready["reason"] and ready["status"] in ("True", "False", "Unknown"), ready

    check()
    print(f"{kind}: {seen['refused']} refused, {seen['admitted']} admitted and planned")
    assert seen["refused"] > 0 and seen["admitted"] > 0, seen  # both sides of the rules were tried

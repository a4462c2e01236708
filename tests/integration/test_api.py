"""The CRDs on a real kube-apiserver: examples apply, kubectl shows the printer columns."""

from __future__ import annotations

import re

import yaml

from tests.conftest import EXAMPLES, ROOT, load_yaml
from tests.integration.conftest import Kubectl

KINDS = ("dataset", "trainingrun", "modeldeployment", "driftmonitor")


def test_crds_are_established(kubectl: Kubectl) -> None:
    crds = kubectl.get("crd", "-l", "app.kubernetes.io/part-of=lathe")["items"]
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "datasets.lathe.dev",
        "driftmonitors.lathe.dev",
        "modeldeployments.lathe.dev",
        "trainingruns.lathe.dev",
    ]
    for crd in crds:
        established = next(c for c in crd["status"]["conditions"] if c["type"] == "Established")
        assert established["status"] == "True"


def test_every_example_applies_and_is_stored_as_written(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("apply", "-n", namespace, "-R", "-f", str(ROOT / "examples"))
    for path in EXAMPLES:
        example = load_yaml(path)
        stored = kubectl.get(example["kind"].lower(), example["metadata"]["name"], "-n", namespace)
        assert stored["spec"]["model" if "model" in example["spec"] else next(iter(example["spec"]))]


def test_kubectl_get_shows_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("apply", "-n", namespace, "-R", "-f", str(ROOT / "examples"))
    out = kubectl.run("get", "datasets,trainingruns,modeldeployments,driftmonitors", "-n", namespace).stdout
    headers = [line.split() for line in out.splitlines() if line.startswith("NAME")]
    assert ["NAME", "VERSION", "ROWS", "READY", "AGE"] in headers
    assert ["NAME", "DATASET", "ACCURACY", "MODEL", "VERSION", "READY", "AGE"] in headers
    assert ["NAME", "MODEL", "MODE", "SERVING", "READY", "AGE"] in headers
    assert ["NAME", "DEPLOYMENT", "VERDICT", "DRIFT", "READY", "AGE"] in headers
    assert re.search(r"digits-mlp-1 +digits", out) and re.search(r"digits-forest-1 +digits", out)
    wide = kubectl.run("get", "driftmonitors", "-n", namespace, "-o", "wide").stdout.splitlines()[0].split()
    assert wide[:5] == ["NAME", "DEPLOYMENT", "VERDICT", "DRIFT", "RETRAIN"]  # the last retrain's phase


def test_short_names_and_category(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("apply", "-n", namespace, "-R", "-f", str(ROOT / "examples"))
    names = kubectl.run("get", "lathe", "-n", namespace, "-o", "name").stdout.split()
    applied = [
        f"{doc['kind'].lower()}.lathe.dev/{doc['metadata']['name']}"
        for path in sorted((ROOT / "examples").rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("apiVersion") == "lathe.dev/v1alpha1"
    ]
    assert {n.split("/")[0] for n in applied} == {f"{k}.lathe.dev" for k in KINDS}  # every kind has an example
    assert sorted(names) == sorted(set(applied))  # the lathe category lists every object (some examples share one)
    assert kubectl.run("get", "ds,tr,md,dm", "-n", namespace, "-o", "name").stdout.split() != []


def test_kubectl_explain_shows_descriptions(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "trainingruns.spec.gates").stdout
    assert "maxRegression" in out and "baseline" in out

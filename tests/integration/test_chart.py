"""The Helm chart: lints strictly, renders, applies to the real API server, rejects unknown values."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.conftest import Kubectl
from tests.servers.tools import helm

CHART = ROOT / "charts/lathe"


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(helm()), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {result.stderr}")
    return result


def render(*values: str) -> list[dict[str, Any]]:
    out = run_helm("template", "lathe", str(CHART), "--namespace", "lathe-system", *values).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_lint_strict() -> None:
    run_helm("lint", "--strict", str(CHART))


def test_renders_operator_with_all_namespaces_by_default() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in render()}
    deployment = docs[("Deployment", "lathe")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--all-namespaces" in container["args"]
    assert container["image"] == "ghcr.io/lathe-dev/lathe-operator:0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert ("ClusterRole", "lathe") in docs and ("ServiceMonitor", "lathe") not in docs
    env = {e["name"]: e for e in container["env"]}
    assert env["LATHE_STORE_URI"]["value"] == "s3://lathe" and env["LATHE_EXECUTOR"]["value"] == "job"
    assert env["LATHE_PIPELINE_BACKEND"]["value"] == "kfp" and env["LATHE_KFP_HOST"]["value"].startswith(
        "http://ml-pipeline"
    )
    assert env["LATHE_STORE_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "lathe-store", "key": "secretKey"}
    assert env["LATHE_SERVING"]["value"] == "seldon" and env["LATHE_PROMETHEUS_URL"]["value"].startswith("http://")
    rules = next(r for r in docs[("ClusterRole", "lathe")]["rules"] if "machinelearning.seldon.io" in r["apiGroups"])
    assert {"create", "update", "get"} <= set(rules["verbs"])  # the operator replaces (PUT) its graphs
    # Secrets: get only, to check a Dataset's credentials Secret for its opt-in label (read as metadata only)
    secrets = [r for r in docs[("ClusterRole", "lathe")]["rules"] if "secrets" in r["resources"]]
    assert [(r["resources"], r["verbs"]) for r in secrets] == [(["secrets"], ["get"])]
    assert env["LATHE_SOURCE_ENDPOINTS"]["value"] == ""  # the store's endpoint only


def test_rbac_is_a_role_per_watched_namespace_with_secret_reads_there_only() -> None:
    refused = run_helm("template", "lathe", str(CHART), "--set", "executor=local", check=False)
    assert refused.returncode != 0 and "executor" in refused.stderr  # runs inside the operator pod: never
    for executor in ("job",):
        docs = render("--set", "watchNamespaces={team-a,team-b}", "--set", f"executor={executor}")
        roles = {(d["kind"], d["metadata"].get("namespace")): d for d in docs if d["kind"] in ("Role", "RoleBinding")}
        assert set(roles) == {(k, ns) for k in ("Role", "RoleBinding") for ns in ("team-a", "team-b")}
        cluster = [d for d in docs if d["kind"] == "ClusterRole"]
        assert [d["metadata"]["name"] for d in cluster] == ["lathe-discovery"]  # nothing namespaced cluster-wide
        granted = {res for r in cluster[0]["rules"] for res in r["resources"]}
        assert granted == {"customresourcedefinitions", "namespaces"}
        for namespace in ("team-a", "team-b"):
            rules = roles[("Role", namespace)]["rules"]
            assert [r["verbs"] for r in rules if "secrets" in r["resources"]] == [["get"]]


def test_store_isolation_points_workloads_at_the_scoped_secret_the_operator_may_write() -> None:
    refused = run_helm("template", "lathe", str(CHART), "--set", "store.isolation=namespace", check=False)
    assert refused.returncode != 0 and "needs pipelines.backend job" in refused.stderr
    docs = render(
        "--set", "watchNamespaces={team-a}", "--set", "store.isolation=namespace", "--set", "pipelines.backend=job"
    )
    container = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["LATHE_STORE_ISOLATION"]["value"] == "namespace" and env["LATHE_STORE_REGION"]["value"] == "us-east-1"
    assert env["LATHE_STORE_SECRET"]["value"] == "lathe-store-scoped"  # never the operator's own keys' Secret
    assert env["LATHE_KFP_HOST"]["value"] == "" and env["LATHE_STORE_IAM_REGION"]["value"] == "us-east-1"
    assert env["LATHE_STORE_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "lathe-store"
    rules = next(d for d in docs if d["kind"] == "Role")["rules"]
    assert [r["verbs"] for r in rules if "secrets" in r["resources"]] == [["get"], ["create", "update"]]


def test_allowed_source_endpoints_reach_the_operator_and_are_checked() -> None:
    docs = render("--set", "sources.allowedEndpoints={s3.eu-west-1.amazonaws.com:443,minio.data.svc:9000}")
    container = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LATHE_SOURCE_ENDPOINTS"] == "s3.eu-west-1.amazonaws.com:443,minio.data.svc:9000"
    result = run_helm("template", "lathe", str(CHART), "--set", "sources.allowedEndpoints={https://x}", check=False)
    assert result.returncode != 0 and "at '/sources/allowedEndpoints/0'" in result.stderr, result.stderr


def test_watch_namespaces_service_monitor_and_alerts() -> None:
    docs = render(
        "--set",
        "watchNamespaces={team-a,team-b}",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set-json",
        "metrics.prometheusRule.errorRate=0.02",
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args
    assert any(d["kind"] == "ServiceMonitor" for d in docs)
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert (
        "> 0.02" in alerts["LatheModelErrorRate"]["expr"]
        and "{{ $labels.deployment }}" in alerts["LatheModelErrorRate"]["annotations"]["summary"]
    )
    assert {"LatheModelLatencyHigh", "LatheModelLiveAccuracyLow", "LatheReconcileErrors"} <= set(alerts)


@pytest.mark.parametrize(
    "bad",
    [
        "imag.tag=1",
        "logFormat=xml",
        "replicaCount=2",
        "metrics.port=0",
        "store.uri=minio://x",
        "executor=thread",
        "pipelines.backend=argo",
        "serving.backend=knative",
        "serving.prometheusUrl=ftp://x",
        "metrics.prometheusRule.errorRate=2",
        "store.isolation=tenant",
    ],
)
def test_schema_rejects_unknown_or_invalid_values(bad: str) -> None:
    result = run_helm("template", "lathe", str(CHART), "--set", bad, check=False)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr
    field = bad.split("=", 1)[0]
    named = f"'{field.split('.')[0]}' not allowed" if field == "imag.tag" else f"at '/{field.replace('.', '/')}'"
    assert named in result.stderr, result.stderr  # the field, so the platform engineer knows what to fix


def test_chart_crds_are_the_generated_ones() -> None:
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(
        p.name for p in (ROOT / "manifests/crds").iterdir()
    )


def test_rendered_chart_applies_to_the_api_server(kubectl: Kubectl) -> None:
    kubectl.run("create", "namespace", "lathe-system", check=False)
    out = run_helm("template", "lathe", str(CHART), "--namespace", "lathe-system").stdout
    result = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=out)
    assert "deployment.apps/lathe created (server dry run)" in result.stdout

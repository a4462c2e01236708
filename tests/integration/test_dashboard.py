"""The chart's Grafana dashboard and PodMonitor: PromQL parsed by promtool, names checked against the code's metrics.

The exported names come from the metric objects themselves (operator and model server),
each probed with one labelled child so that prometheus_client lists its samples
(``_total``, ``_bucket``, ``_sum``, ``_count``) the way /metrics shows them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from lathe_core.settings import StoreSettings
from lathe_operator.api.v1alpha1 import ModelDeployment
from lathe_operator.backends.drift_metrics import DriftGauges
from lathe_operator.handlers import apply
from lathe_operator.reconcile import seldon
from lathe_operator.reconcile import serving_kubernetes as k8s
from lathe_serving.service import Metrics
from tests.integration.test_chart import CHART, render, run_helm

STORE = StoreSettings(uri="s3://lathe", endpoint="s3.store:9000", access_key="AK", secret_key="SK")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def exported() -> dict[str, set[str]]:
    """Sample name -> label names, for every metric the operator and the model server define."""
    metrics = [*vars(apply).values(), *vars(DriftGauges(CollectorRegistry())).values(), *vars(Metrics()).values()]
    samples: dict[str, set[str]] = {}
    for metric in (m for m in metrics if isinstance(m, MetricWrapperBase)):
        probe = ["probe"] * len(metric._labelnames)
        if probe:  # a labelled metric shows no samples until it has a child
            metric.labels(*probe)
        try:
            for family in metric.collect():
                for sample in family.samples:
                    samples.setdefault(sample.name, set()).update(sample.labels)
        finally:
            if probe:
                metric.remove(*probe)
    return samples


def parse(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression uses; enough PromQL for what a dashboard writes."""
    names: set[str] = set()
    labels: set[str] = set()
    for body in re.findall(r"\{([^}]*)\}", expr):
        for label, op, value in MATCHER.findall(body):
            if label != "__name__":
                labels.add(label)
            elif op in ("=", "=~"):
                names.update(value.split("|"))
    rest = re.sub(r"\{[^}]*\}", " ", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr))
    for group in GROUPING.findall(rest):
        labels.update(label.strip() for label in group.split(",") if label.strip())
    rest = re.sub(r"\[[^\]]*\]", " ", GROUPING.sub(" ", rest))
    for word in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", rest):
        if word.group() not in KEYWORDS and not rest[word.end() :].lstrip().startswith("("):
            names.add(word.group())
    return names, labels


def dashboard(*values: str) -> dict[str, Any]:
    docs = render("--set", "metrics.dashboard.enabled=true", *values)
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lathe-dashboard")
    return dict(json.loads(config_map["data"]["lathe.json"]))


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def queries(board: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, expression, legend) of every panel target and every label_values variable's selector."""
    found = [
        (f"{p['title']} {t['refId']}", t["expr"], t.get("legendFormat", ""))
        for p in panels(board)
        for t in p.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            selector, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]).groups()
            found.append((f"variable {variable['name']}", selector, "{{" + label + "}}"))
    return found


def concrete(expr: str, variables: set[str]) -> str:
    """The expression Grafana sends: its interval macros and dashboard variables replaced by values."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in variables, f"${match.group(1)} is not a dashboard variable"
        return "ml"

    return re.sub(r"\$\{?(\w+)\}?", value, expr)


def test_the_parser_finds_names_and_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (version, le) (rate(a_bucket{code=~"5.."}[5m])))'
        ' / ignoring (version) group_left b or {__name__=~"c|d"}'
    )
    assert parse(expr) == ({"a_bucket", "b", "c", "d"}, {"code", "version", "le"})


def test_every_expression_parses_in_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run `make tools` (it comes with Debian's prometheus package)")
    board = dashboard()
    variables = {v["name"] for v in board["templating"]["list"]}
    rules = [
        {"record": f"lathe:dashboard:query{i}", "expr": concrete(expr, variables)}
        for i, (_, expr, _) in enumerate(queries(board))
    ]
    assert len(rules) > 20
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_every_metric_and_label_is_one_the_code_exports() -> None:
    samples = exported()
    assert {"lathe_model_request_seconds_bucket", "lathe_reconcile_total", "lathe_drift_share"} <= set(samples)
    used: set[str] = set()
    for where, expr, legend in queries(dashboard()):
        names, labels = parse(expr)
        assert names, f"{where}: no metric in {expr}"
        assert names <= set(samples), f"{where}: not exported: {names - set(samples)}"
        known = set().union(*(samples[n] for n in names))
        assert labels <= known, f"{where}: labels {labels - known} are not on {names}"
        shown = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert shown <= labels | known, f"{where}: legend shows {shown - known}"
        used |= names
    assert {n for n in used if n.startswith("lathe_model_")} and {n for n in used if n.startswith("lathe_drift_")}


def test_every_panel_has_a_title_and_the_datasource_variable() -> None:
    board = dashboard()
    source = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
    assert source["type"] == "datasource" and source["query"] == "prometheus" and board["schemaVersion"] >= 39
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"] and all(t["datasource"] == panel["datasource"] for t in panel["targets"])


def test_the_config_map_carries_the_sidecar_label_only_when_enabled() -> None:
    assert not any(d["kind"] == "ConfigMap" for d in render())
    docs = render(
        "--set",
        "metrics.dashboard.enabled=true",
        "--set",
        "metrics.dashboard.labelKey=dashboards",
        "--set",
        "metrics.dashboard.labelValue=lathe",
        "--set",
        "metrics.dashboard.namespace=grafana",
    )
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config_map["metadata"]["labels"]["dashboards"] == "lathe"
    assert config_map["metadata"]["namespace"] == "grafana"
    default = next(d for d in render("--set", "metrics.dashboard.enabled=true") if d["kind"] == "ConfigMap")
    assert default["metadata"]["labels"]["grafana_dashboard"] == "1"


def model_deployment() -> ModelDeployment:
    meta = {"name": "web", "namespace": "ml", "uid": "u1", "generation": 3}
    spec = {"model": {"name": "clf", "version": 1}, "graph": {"transformers": [{"name": "scale", "image": "x/s:1"}]}}
    return ModelDeployment.model_validate({"kind": "ModelDeployment", "metadata": meta, "spec": spec})


def test_pod_monitor_selects_the_model_server_pods_on_their_metrics_port() -> None:
    assert not any(d["kind"] == "PodMonitor" for d in render())
    monitor = next(d for d in render("--set", "metrics.podMonitor.enabled=true") if d["kind"] == "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    keep = re.compile(endpoint["relabelings"][0]["regex"])  # Prometheus anchors relabel regexes
    assert endpoint["path"] == "/metrics" and monitor["spec"]["namespaceSelector"] == {"any": True}
    md = model_deployment()

    pod = k8s.manifests(md, [(1, 100)], None, image="serving:1", store=STORE, secret="lathe-store")[1]["spec"][
        "template"
    ]
    assert selector.items() <= pod["metadata"]["labels"].items()
    server = next(c for c in pod["spec"]["containers"] if keep.fullmatch(c["name"]))
    assert {"name": endpoint["port"], "containerPort": k8s.PORT} in server["ports"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(k8s.PORT)

    uris = {1: "s3://lathe/models/ml/clf/1/"}
    deployment = seldon.seldon_deployment(
        md, [(1, 100)], None, uris, image="serving:1", store=STORE, storage_secret="s", logger_url=None
    )
    for predictor in deployment["spec"]["predictors"]:
        assert selector.items() <= predictor["labels"].items()  # Seldon copies predictor labels onto its pods
        containers = predictor["componentSpecs"][0]["spec"]["containers"]
        assert [c["name"] for c in containers if keep.fullmatch(c["name"])] == ["model"]
        node = predictor["graph"]
        while node["children"]:
            node = node["children"][0]
        # Seldon names the model node's container port "http" (its httpPort); the server listens there
        assert node["endpoint"]["httpPort"] == seldon.PORT and str(seldon.PORT) in containers[0]["args"]
        assert containers[0]["readinessProbe"]["httpGet"]["port"] == endpoint["port"]

    watched = render("--set", "metrics.podMonitor.enabled=true", "--set", "watchNamespaces={ml,team-b}")
    monitor = next(d for d in watched if d["kind"] == "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml", "team-b"]}


@pytest.mark.parametrize("bad", ["metrics.dashboard.folder=x", "metrics.podMonitor.interval=often"])
def test_schema_rejects_unknown_or_invalid_monitoring_values(bad: str) -> None:
    result = run_helm("template", "lathe", str(CHART), "--set", bad, check=False)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr

"""Guards against what a tenant controls: names the API server accepts, ConfigMap keys, local runs in a pod,
and terminal control in what ``kubectl lathe`` prints."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lathe_operator.api.v1alpha1.dataset import ConfigMapSource
from lathe_operator.config import Config
from lathe_operator.plugin.show import Printer, clean
from lathe_operator.reconcile import jobs, names

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
parents = st.from_regex(rf"{LABEL}(\.{LABEL}){{0,5}}", fullmatch=True).filter(lambda n: len(n) <= 253)


SHAPES = [  # each call site: (cut, suffixes)
    (40, ("0f3c9a1b", "GEN")),  # a TrainingRun's and a batch/edge ModelDeployment's run
    (36, ("0f3c9a1b", "GEN", "SLOT")),  # a DriftMonitor's check
    (30, ("a1b2c3d4e5", "SLOT")),  # a Dataset's ingest
    (52, ("retrain",)),  # a DriftMonitor's retrain Dataset
    (40, ("retrain", "GEN")),  # a retrain's TrainingRun
]


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parents, st.sampled_from(SHAPES), st.integers(0, 999_999), st.integers(0, 9_999_999_999))
def test_every_child_name_is_a_dns_1123_name_that_fits_a_label(
    parent: str, shape: tuple[int, tuple[str, ...]], generation: int, slot: int
) -> None:
    limit, suffixes = shape
    filled = [{"GEN": generation, "SLOT": slot}.get(s, s) for s in suffixes]
    name = names.child(parent, limit, *filled)
    assert SUBDOMAIN.match(name) and len(name) <= 63, name  # before: "ab.-0f3c9a1b-..." when the cut ended on a dot
    if len(parent) <= limit:
        assert name == "-".join([parent, *map(str, filled)])  # names made before this rule are unchanged


def test_a_configmap_key_that_leaves_the_mount_is_refused() -> None:
    for key in ("../../etc/passwd", "a/b", "..", ".", "x y"):
        with pytest.raises(ValidationError):
            ConfigMapSource(name="data", key=key)
    assert ConfigMapSource(name="data", key="digits.csv").key == "digits.csv"


def test_an_ingest_job_mounts_only_the_sources_key() -> None:
    from lathe_core.runs import RunRequest
    from lathe_core.settings import StoreSettings

    request = RunRequest(
        namespace="ml", name="d-1", component="ingest", args=("ingest",), source_file=("data", "d.csv")
    )
    job: dict[str, Any] = jobs.manifest(request, image="jobs:1", service_account="lathe-jobs", store=StoreSettings())
    volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "source")
    assert volume["configMap"] == {"name": "data", "items": [{"key": "d.csv", "path": "d.csv"}]}


def test_the_local_executor_is_refused_in_a_pod() -> None:
    with pytest.raises(ValueError, match="refused in a pod"):
        Config.from_env({"LATHE_EXECUTOR": "local", "KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert Config.from_env({"LATHE_EXECUTOR": "local"}).executor == "local"  # the local demo, on a machine


def test_terminal_control_from_a_trainer_never_reaches_the_terminal() -> None:
    hostile = "epoch 1\x1b[2J\x1b[H\x1b]0;owned\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ done\x08\r\n\tnext\x9b31m"
    assert clean(hostile) == "epoch 1link done\n\tnext31m"
    out = io.StringIO()
    printer = Printer(out, colour="always")
    printer.write(hostile)
    printer.line(printer.paint("Ready", "green") + " " + hostile)
    text = out.getvalue()
    assert "\x1b[2J" not in text and "\x1b]" not in text and "\x07" not in text
    assert "\x1b[32mReady\x1b[0m" in text  # the plugin's own colours stay


def test_the_clusters_cidrs_reach_every_job_and_a_bad_one_stops_the_operator() -> None:
    from lathe_core.runs import RunRequest
    from lathe_core.settings import StoreSettings

    config = Config.from_env({"LATHE_CLUSTER_CIDRS": "10.244.0.0/16, fd00:10:244::/56"})
    assert config.cluster_cidrs == ("10.244.0.0/16", "fd00:10:244::/56")
    request = RunRequest(namespace="ml", name="d-1", component="ingest", args=("ingest",))
    job = jobs.manifest(
        request, image="jobs:1", service_account="j", store=StoreSettings(), denied_cidrs=config.cluster_cidrs
    )
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LATHE_SOURCES_DENIED_CIDRS"] == "10.244.0.0/16,fd00:10:244::/56"
    with pytest.raises(ValueError, match="LATHE_CLUSTER_CIDRS"):
        Config.from_env({"LATHE_CLUSTER_CIDRS": "10.244.0.0/16,pods"})


def test_the_clusters_own_networks_are_refused_even_where_addresses_are_global(monkeypatch: pytest.MonkeyPatch) -> None:
    """An IPv6 cluster's pod and Service addresses are global unicast: only the configured CIDRs refuse them."""
    from lathe_pipelines.steps import fetch

    pod = "2600:1f18:42:7::15"  # global unicast, as an EKS IPv6 cluster's pod addresses are
    policy = fetch.Policy.from_env({fetch.DENIED: "10.96.0.0/12, 2600:1f18:42::/48"})
    assert not policy.refuses("2600:1f18:43::1") and policy.refuses(pod) and policy.refuses("::ffff:10.96.0.10")
    monkeypatch.setattr(fetch, "resolve", lambda host, port: [pod])
    monkeypatch.setattr(fetch, "connect", lambda *_: pytest.fail("connected to a refused address"))
    with pytest.raises(fetch.SourceRefused, match="cluster"):
        fetch.fetch("http://pod.example/digits.csv", policy)
    with pytest.raises(fetch.SourceRefused):  # allowing private addresses (local mode) never opens the cluster's
        fetch.fetch("http://pod.example/digits.csv", fetch.Policy(allow_private=True, denied=policy.denied))
    with pytest.raises(fetch.IngestError, match="LATHE_SOURCES_DENIED_CIDRS"):
        fetch.Policy.from_env({fetch.DENIED: "10.96.0.0/33"})

"""Dataset sources with plain values: which Secrets, keys, endpoints and buckets an ingest may use before it starts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import kopf
import pytest

from lathe_core import layout
from lathe_core.runs import RunState
from lathe_core.settings import StoreSettings
from lathe_operator.api.crd import crd
from lathe_operator.api.v1alpha1 import Dataset
from lathe_operator.config import Config
from lathe_operator.handlers import dataset as handlers
from lathe_operator.reconcile import dataset as reconcile
from lathe_operator.reconcile import retrain as loop
from lathe_operator.reconcile import sources
from lathe_operator.reconcile.dataset import DatasetObserved
from lathe_operator.reconcile.sources import CREDENTIALS_LABEL, SourcePolicy

from .test_reconcile import META, NOW, ready
from .test_reconcile_retrain import LINEAGE
from .test_reconcile_retrain import make as monitor

STORE = StoreSettings(uri="s3://lathe", endpoint="minio.lathe-system.svc:9000")
POLICY = SourcePolicy(STORE, ("s3.partner.example:443",))
OPTED_IN = {CREDENTIALS_LABEL: "true"}
CREDS = {"name": "raw-creds"}


def make(**source: Any) -> Dataset:
    return Dataset.model_validate({"kind": "Dataset", "metadata": META, "spec": {"source": source}})


def step(
    dataset: Dataset, labels: dict[str, str] | None, now: datetime = NOW, policy: SourcePolicy = POLICY
) -> tuple[reconcile.DatasetPlan, Dataset]:
    observed = DatasetObserved(now=now, run=RunState("Absent"), secret_labels=labels)
    plan = reconcile.plan(dataset, observed, policy)
    return plan, Dataset.model_validate({**dataset.dump(), "status": plan.status})


def message(dataset: Dataset) -> str:
    return next(c.message for c in dataset.status.conditions if c.type == "Ready")


def reason(dataset: Dataset, policy: SourcePolicy = POLICY, labels: dict[str, str] | None = OPTED_IN) -> str | None:
    refusal = sources.check(dataset, policy, labels)
    return refusal and refusal.reason


@pytest.mark.parametrize("labels", [{}, {CREDENTIALS_LABEL: "false"}, {"app": "raw"}])
def test_a_secret_without_the_label_is_refused_and_nothing_starts(labels: dict[str, str]) -> None:
    plan, after = step(make(uri="s3://raw/d.csv", credentialsSecret=CREDS), labels)
    assert plan.start is None and ready(after) == ("False", "CredentialsNotAllowed") and after.status.phase == "Failed"
    assert "kubectl label secret raw-creds -n team-a lathe.dev/credentials=true" in message(after)
    assert after.status.last_run is not None and after.status.last_run.outcome == "Failed"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "CredentialsNotAllowed")]
    assert plan.requeue_after == reconcile.retry_delay(0)  # a label can come later: looked at again with back-off
    again, same = step(after, labels, NOW + timedelta(seconds=3))
    assert again.empty and same.status == after.status  # planning twice changes nothing


def test_a_missing_secret_is_refused_with_how_to_make_it() -> None:
    plan, after = step(make(uri="s3://raw/d.csv", credentialsSecret=CREDS), None)
    assert plan.start is None and ready(after) == ("False", "CredentialsNotFound")
    assert "accessKey and secretKey and the label lathe.dev/credentials=true" in message(after)


def test_labelling_the_secret_starts_the_run_with_the_documented_keys_only() -> None:
    dataset = make(uri="s3://raw/d.csv", credentialsSecret=CREDS)
    refused, after = step(dataset, {})
    plan, running = step(after, OPTED_IN, NOW + timedelta(seconds=2))  # before the back-off ran out
    assert plan.start is not None and after.status.last_run and plan.start.name == after.status.last_run.name
    assert plan.start.secret_env == {
        "LATHE_SOURCE_ACCESS_KEY": ("raw-creds", "accessKey"),
        "LATHE_SOURCE_SECRET_KEY": ("raw-creds", "secretKey"),
    }
    assert ready(running) == ("False", "Ingesting")


def test_a_refusal_that_lasts_moves_to_the_next_attempt_after_its_back_off() -> None:
    _, after = step(make(uri="s3://raw/d.csv", credentialsSecret=CREDS), {})
    plan, later = step(after, {}, NOW + timedelta(seconds=reconcile.retry_delay(0)))
    assert later.status.last_run is not None and later.status.last_run.attempt == 1 and plan.start is None
    assert plan.requeue_after == reconcile.retry_delay(1)


def test_endpoints_outside_the_allowlist_are_refused_for_good() -> None:
    dataset = make(uri="s3://raw/d.csv", credentialsSecret=CREDS, endpoint="s3.attacker.example:9000")
    plan, after = step(dataset, OPTED_IN)
    assert plan.start is None and ready(after) == ("False", "EndpointNotAllowed")
    text = message(after)
    assert "LATHE_SOURCE_ENDPOINTS" in text and "sources.allowedEndpoints" in text and "s3.partner.example:443" in text
    assert plan.requeue_after is None  # only a new spec or operator setting changes the answer
    assert step(after, OPTED_IN, NOW + timedelta(hours=1))[0].empty


def test_the_store_endpoint_is_always_allowed_and_listed_ones_beside_it() -> None:
    partner = make(uri="s3://raw/d.csv", credentialsSecret=CREDS, endpoint="S3.Partner.example:443")
    assert reason(partner) is None and reason(partner, SourcePolicy(STORE)) == "EndpointNotAllowed"
    for endpoint in (None, "minio.lathe-system.svc:9000"):
        assert (
            reason(make(uri="s3://raw/d.csv", credentialsSecret=CREDS, endpoint=endpoint), SourcePolicy(STORE)) is None
        )
    assert step(partner, OPTED_IN)[0].start is not None


def test_the_store_keys_go_to_the_store_endpoint_only() -> None:
    elsewhere = make(uri="s3://raw/d.csv", endpoint="s3.partner.example:443")
    assert reason(elsewhere, labels=None) == "CredentialsRequired"
    assert reason(make(uri="s3://raw/d.csv"), labels=None) is None  # another bucket on the store's server


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("datasets/team-b/digits/", False),  # another namespace's versions
        ("models/team-a/clf/1/model.onnx", False),
        ("retrain/team-b/watch/watch-retrain-1.parquet", False),
        ("retrain/team-a/../team-b/watch/watch-retrain-1.parquet", False),
        ("retrain/team-a/./x.parquet", False),
        ("retrain/team-a//x.parquet", False),
        ("retrain/team-ab/x.parquet", False),
        ("retrain/team-a/watch/watch-retrain-1.parquet", True),  # the namespace's own closed loop
        ("retrain/team-a/", True),
    ],
)
def test_the_store_bucket_needs_the_datasets_own_credentials(key: str, allowed: bool) -> None:
    dataset = make(uri=f"s3://lathe/{key}")
    assert reason(dataset, labels=None) == (None if allowed else "CredentialsRequired")
    assert reason(make(uri=f"s3://lathe/{key}", credentialsSecret=CREDS)) is None  # its own keys: S3 decides
    if not allowed:
        plan, after = step(dataset, None)
        assert plan.start is None and "spec.source.credentialsSecret" in message(after)


def test_the_closed_loops_retrain_dataset_reads_its_own_namespaces_data() -> None:
    watcher = monitor()
    uri = f"s3://lathe/{layout.retrain_data(watcher.namespace, watcher.name, 'watch-retrain-1')}"
    manifest = loop.dataset_manifest(watcher, LINEAGE, uri)
    retrain = Dataset.model_validate({**manifest, "metadata": {**manifest["metadata"], "uid": "u", "generation": 1}})
    assert sources.check(retrain, POLICY, None) is None


def test_sources_without_keys_are_not_checked() -> None:
    assert reason(make(uri="https://example.com/d.csv"), labels=None) is None
    assert reason(make(configMap={"name": "tiny", "key": "d.csv"}), labels=None) is None
    local = SourcePolicy(StoreSettings(uri="file:///var/lathe"))
    assert reason(make(uri="s3://lathe/datasets/team-b/x/"), local, labels=None) is None  # no store bucket


def test_the_allowlist_setting_is_read_and_checked() -> None:
    config = Config.from_env({"LATHE_SOURCE_ENDPOINTS": " S3.Partner.example:443 , minio.other:9000,"})
    assert config.source_endpoints == ("s3.partner.example:443", "minio.other:9000")
    assert Config.from_env({}).source_endpoints == ()
    with pytest.raises(ValueError, match="LATHE_SOURCE_ENDPOINTS"):
        Config.from_env({"LATHE_SOURCE_ENDPOINTS": "https://evil.example"})


def test_the_crd_accepts_the_documented_keys_only() -> None:
    source = crd(Dataset)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    ref = source["source"]["properties"]["credentialsSecret"]["properties"]
    assert (ref["accessKeyKey"]["enum"], ref["secretKeyKey"]["enum"]) == (["accessKey"], ["secretKey"])


class MetadataOnly:
    """A Kube port that answers metadata alone: the handler must not need a Secret's data."""

    def __init__(self, found: dict[str, Any] | None) -> None:
        self.found, self.asked = found, []

    def metadata(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.asked.append((api_version, kind, namespace, name))
        return self.found


def test_the_handler_reads_the_secrets_labels_from_its_metadata() -> None:
    kube = MetadataOnly({"name": "raw-creds", "labels": OPTED_IN})
    dataset = make(uri="s3://raw/d.csv", credentialsSecret=CREDS)
    assert handlers._secret_labels(kopf.Memo(kube=kube), dataset) == OPTED_IN
    assert kube.asked == [("v1", "Secret", "team-a", "raw-creds")]
    assert handlers._secret_labels(kopf.Memo(kube=MetadataOnly(None)), dataset) is None
    assert handlers._secret_labels(kopf.Memo(kube=MetadataOnly(None)), make(uri="s3://raw/d.csv")) is None

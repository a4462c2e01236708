"""Reconcilers plan with plain values; planning again after applying a plan is a no-op."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lathe_operator.api.v1alpha1 import Dataset, DriftMonitor, TrainingRun
from lathe_operator.reconcile import dataset, unsupported
from lathe_operator.reconcile.plan import Observed

NOW = datetime(2026, 1, 1, tzinfo=UTC)
META = {"name": "digits", "namespace": "team-a", "uid": "1234", "generation": 2}


def make_dataset(**status: Any) -> Dataset:
    return Dataset.model_validate(
        {"kind": "Dataset", "metadata": META, "spec": {"source": {"uri": "s3://raw/d.csv"}}, "status": status}
    )


def test_dataset_first_plan_creates_an_owned_job_and_reports_progress() -> None:
    plan = dataset.plan(make_dataset(), Observed(now=NOW), image="img", service_account="sa")
    [job] = plan.create
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("digits-ingest-")
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Dataset", "1234", True)
    assert plan.status["observedGeneration"] == 2
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "IngestPending")
    assert [e.reason for e in plan.events] == ["CreatedIngestJob", "IngestPending"]


def test_dataset_plan_twice_is_empty() -> None:
    first = dataset.plan(make_dataset(), Observed(now=NOW), image="img", service_account="sa")
    job = first.create[0]
    later = Observed(now=NOW + timedelta(seconds=30), children={("Job", job["metadata"]["name"]): job})
    second = dataset.plan(make_dataset(**first.status), later, image="img", service_account="sa")
    assert second.empty
    assert second.status == first.status


def test_dataset_job_name_is_stable_and_follows_the_spec() -> None:
    a, b = make_dataset(), make_dataset()
    assert dataset.job_name(a) == dataset.job_name(b)
    changed = Dataset.model_validate({"kind": "Dataset", "metadata": META, "spec": {"source": {"uri": "s3://raw/e.csv"}}})
    assert dataset.job_name(changed) != dataset.job_name(a)


def test_failed_ingest_job_degrades_the_dataset_with_a_warning() -> None:
    first = dataset.plan(make_dataset(), Observed(now=NOW), image="img", service_account="sa")
    job = {**first.create[0], "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    plan = dataset.plan(make_dataset(**first.status), Observed(now=NOW, children={("Job", job["metadata"]["name"]): job}),
                        image="img", service_account="sa")
    assert not plan.create
    assert plan.status["phase"] == "Failed"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "IngestFailed")]


def test_unsupported_kinds_say_so_and_settle() -> None:
    for resource in (
        TrainingRun.model_validate({"kind": "TrainingRun", "metadata": META,
                                    "spec": {"dataset": {"name": "d"}, "model": {"name": "m"}}}),
        DriftMonitor.model_validate({"kind": "DriftMonitor", "metadata": META, "spec": {"deployment": "d"}}),
    ):
        first = unsupported.plan(resource, Observed(now=NOW))
        ready = next(c for c in first.status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "NotImplemented")
        again = type(resource).model_validate({**resource.dump(), "status": first.status})
        assert unsupported.plan(again, Observed(now=NOW)).empty

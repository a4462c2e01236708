"""Reconcilers plan with plain values; planning again after applying a plan is a no-op."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lathe_core.runs import RunState as RunObservation
from lathe_core.settings import StoreSettings
from lathe_operator.api.v1alpha1 import Dataset, DriftMonitor, TrainingRun
from lathe_operator.reconcile import dataset as reconcile
from lathe_operator.reconcile import jobs, unsupported
from lathe_operator.reconcile.dataset import DatasetObserved
from lathe_operator.reconcile.plan import Observed

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
META = {"name": "digits", "namespace": "team-a", "uid": "1234", "generation": 2}
V1, V2, V3, V4 = (f"sha256:{c * 64}" for c in "1234")


def make(status: dict[str, Any] | None = None, **spec: Any) -> Dataset:
    return Dataset.model_validate(
        {
            "kind": "Dataset",
            "metadata": META,
            "spec": {"source": {"uri": "s3://raw/d.csv"}, **spec},
            "status": status or {},
        }
    )


def report(outcome: str, version: str = V1, **extra: Any) -> RunObservation:
    body = {
        "outcome": outcome,
        "reason": extra.pop("reason", outcome),
        "version": version,
        "rows": 10,
        "columns": 3,
        "message": extra.pop("message", outcome),
        "finishedAt": NOW.isoformat(),
        **extra,
    }
    return RunObservation("Done", body)


def step(
    dataset: Dataset, run: RunObservation, now: datetime = NOW, **observed: Any
) -> tuple[reconcile.DatasetPlan, Dataset]:
    plan = reconcile.plan(dataset, DatasetObserved(now=now, run=run, **observed))
    return plan, Dataset.model_validate({**dataset.dump(), "status": plan.status})


def ready(dataset: Dataset) -> tuple[str, str]:
    c = next(c for c in dataset.status.conditions if c.type == "Ready")
    return c.status, c.reason


def test_first_plan_starts_a_run_and_reports_progress() -> None:
    plan, after = step(make(), RunObservation("Absent"))
    assert plan.start is not None and plan.start.name.startswith("digits-") and plan.start.name.endswith("-0")
    assert ready(after) == ("False", "Ingesting") and after.status.phase == "Progressing"
    assert after.status.observed_generation == 2
    assert [e.reason for e in plan.events] == ["StartedIngest", "Ingesting"]


def test_plan_twice_is_empty_while_running_and_after_publishing() -> None:
    first, running = step(make(), RunObservation("Absent"))
    second, again = step(running, RunObservation("Running"), NOW + timedelta(seconds=5))
    assert second.start is None and second.empty and again.status == running.status
    published, done = step(running, report("Published"))
    assert done.status.current_version == V1 and done.status.rows == 10 and ready(done) == ("True", "Published")
    assert [h.version for h in done.status.history] == [V1]
    repeat, same = step(done, report("Published"), NOW + timedelta(minutes=1), stored_versions=[V1])
    assert repeat.empty and repeat.start is None and same.status == done.status


def test_validation_failure_keeps_the_previous_version_current() -> None:
    _, done = step(step(make(), RunObservation("Absent"))[1], report("Published"))
    changed = Dataset.model_validate(
        {**done.dump(), "spec": {**done.spec.dump(), "target": "label"}, "metadata": {**META, "generation": 3}}
    )
    _, running = step(changed, RunObservation("Absent"))
    failed = report(
        "Failed",
        V2,
        reason="ValidationFailed",
        message="1 of 3 expectations failed: expect_x",
        validation={"evaluated": 3, "successful": 2, "failed": 1, "failures": ["expect_x"]},
    )
    plan, after = step(running, failed)
    assert after.status.current_version == V1
    assert ready(after) == ("False", "ValidationFailed") and after.status.phase == "Failed"
    assert after.status.validation is not None and after.status.validation.failures == ["expect_x"]
    assert [(h.version, h.validation) for h in after.status.history] == [(V2, "Failed"), (V1, "Passed")]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ValidationFailed")]


def test_transient_failures_retry_with_back_off() -> None:
    _, running = step(make(), RunObservation("Absent"))
    down = report("Failed", reason="SourceUnavailable", transient=True)
    plan, failed = step(running, down)
    assert plan.requeue_after == reconcile.retry_delay(0) and ready(failed) == ("False", "SourceUnavailable")
    assert reconcile.current_run(failed, NOW + timedelta(seconds=1))[1] == 0  # still backing off
    name, attempt = reconcile.current_run(failed, NOW + timedelta(seconds=reconcile.retry_delay(0)))
    assert attempt == 1 and name.endswith("-1")


def test_an_ingest_that_crashed_without_a_report_is_retried_after_its_back_off() -> None:
    _, running = step(make(), RunObservation("Absent"))
    crashed = RunObservation("Failed", message="exit code 1: StoreUnavailable")
    plan, failed = step(running, crashed)
    assert ready(failed) == ("False", "IngestFailed") and plan.requeue_after == reconcile.retry_delay(0)
    later = NOW + timedelta(seconds=reconcile.retry_delay(0) - 1)
    plan, still = step(failed, crashed, now=later)  # seen failed again: the back-off counts from the first look
    assert plan.start is None and still.status.last_run and still.status.last_run.finished_at == NOW
    plan, retried = step(still, RunObservation("Absent"), now=NOW + timedelta(seconds=reconcile.retry_delay(0)))
    assert plan.start is not None and plan.start.name.endswith("-1")  # the next attempt starts


def test_refresh_interval_starts_a_new_run_each_period() -> None:
    dataset = make(refresh={"interval": "1h"})
    name, _ = reconcile.current_run(dataset, NOW)
    assert reconcile.current_run(dataset, NOW + timedelta(minutes=59))[0] == name
    assert reconcile.current_run(dataset, NOW + timedelta(hours=1))[0] != name
    _, running = step(dataset, RunObservation("Absent"))
    assert reconcile.current_run(running, NOW + timedelta(hours=1))[0] == name  # a run in flight is finished first
    plan, done = step(running, report("Published"))
    assert plan.requeue_after == 3601  # NOW is 12:00: the next look is just after 13:00
    later, _ = step(done, report("Published"), NOW + timedelta(minutes=30))
    assert later.empty and later.requeue_after == 1801


def test_a_dataset_without_refresh_is_not_looked_at_again_once_published() -> None:
    _, running = step(make(), RunObservation("Absent"))
    plan, _ = step(running, report("Published"))
    assert plan.requeue_after is None


def test_retention_deletes_old_unreferenced_versions_only() -> None:
    history = [{"version": v, "time": NOW.isoformat(), "rows": 1, "validation": "Passed"} for v in (V3, V2, V1)]
    dataset = make({"currentVersion": V3, "history": history}, retention={"keep": 1})
    _, running = step(dataset, RunObservation("Absent"))
    created = {v: NOW - timedelta(minutes=m) for v, m in ((V1, 3), (V2, 2), (V3, 1), (V4, 0))}
    plan, _ = step(running, report("Published", V4), stored_versions=[V1, V2, V3, V4], created=created, referenced={V1})
    assert plan.delete_versions == [V2, V3]
    assert [e.reason for e in plan.events if e.reason == "DeletedVersion"] == ["DeletedVersion"] * 2


def test_ingest_job_is_owned_and_takes_credentials_from_secrets() -> None:
    dataset = make(source={"uri": "s3://raw/d.csv", "credentialsSecret": {"name": "raw-creds"}})
    request = reconcile.ingest_request(dataset, "digits-abc-0-0", None)
    job = jobs.manifest(request, image="img", service_account="sa", store=StoreSettings())
    assert job["metadata"]["name"] == "digits-abc-0-0" and job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "lathe",
        "ingest",
        "--namespace",
        "team-a",
        "--name",
        "digits",
        "--run",
        "digits-abc-0-0",
    ]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "1234"
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LATHE_SOURCE_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "raw-creds", "key": "accessKey"}
    assert env["LATHE_STORE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "lathe-store"
    assert "value" not in env["LATHE_SOURCE_SECRET_KEY"]


def test_unsupported_kinds_say_so_and_settle() -> None:
    for resource in (
        TrainingRun.model_validate(
            {"kind": "TrainingRun", "metadata": META, "spec": {"dataset": {"name": "d"}, "model": {"name": "m"}}}
        ),
        DriftMonitor.model_validate({"kind": "DriftMonitor", "metadata": META, "spec": {"deployment": "d"}}),
    ):
        first = unsupported.plan(resource, Observed(now=NOW))
        ready_ = next(c for c in first.status["conditions"] if c["type"] == "Ready")
        assert (ready_["status"], ready_["reason"]) == ("False", "NotImplemented")
        again = type(resource).model_validate({**resource.dump(), "status": first.status})
        assert unsupported.plan(again, Observed(now=NOW)).empty


def test_a_huge_failure_report_is_cut_to_what_status_holds_and_reconciles_again() -> None:
    """A failed expectation's message can carry a whole value_set: status keeps the start, the store the rest."""
    huge = "value_set " + "x" * 200_000
    validation = {"evaluated": 60, "successful": 0, "failed": 60, "failures": [huge] * 60}
    failed = report("Failed", reason="ValidationFailed", message=huge, validation=validation)
    plan, after = step(make(), failed)
    assert len(after.status.last_run.message) == 4096 and after.status.last_run.reason == "ValidationFailed"
    assert len(after.status.validation.failures) == 20 and {len(f) for f in after.status.validation.failures} == {1024}
    again, _ = step(after, failed)  # the next poll plans from that status without failing
    assert again.start is None

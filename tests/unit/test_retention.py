"""Dataset retention ranks stored versions by their manifests and keeps what models were trained on."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.runs import RunState
from lathe_core.store_local import LocalStore
from lathe_operator.api.v1alpha1 import Dataset
from lathe_operator.handlers import dataset as handler
from lathe_operator.handlers.views import StoreFacts
from lathe_operator.reconcile import dataset as reconcile
from lathe_operator.reconcile.dataset import DatasetObserved

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
META = {"name": "digits", "namespace": "team-a", "uid": "1234", "generation": 1}


def version(i: int) -> str:
    """Content addresses in no particular order, as real ones are."""
    return "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()


def published_at(i: int) -> datetime:
    return NOW - timedelta(minutes=100 - i)  # version(i) is the i-th published


def record(v: str, validation: str = "Passed") -> dict[str, Any]:
    return {"version": v, "time": NOW.isoformat(), "rows": 10, "validation": validation}


def make(keep: int, history: list[dict[str, Any]], current: str) -> Dataset:
    return Dataset.model_validate(
        {
            "kind": "Dataset",
            "metadata": META,
            "spec": {"source": {"uri": "s3://raw/d.csv"}, "retention": {"keep": keep}},
            "status": {"currentVersion": current, "history": history},
        }
    )


def publish(dataset: Dataset, newest: str, **observed: Any) -> reconcile.DatasetPlan:
    """The plan once the run that published ``newest`` has reported."""
    name, _ = reconcile.current_run(dataset, NOW)
    report = {"outcome": "Published", "reason": "Published", "version": newest, "rows": 10, "columns": 3}
    started = Dataset.model_validate(
        {**dataset.dump(), "status": {**dataset.status.dump(), "lastRun": {"name": name, "outcome": "Running"}}}
    )
    return reconcile.plan(started, DatasetObserved(now=NOW, run=RunState("Done", report), **observed))


def test_keep_above_the_history_cap_keeps_the_newest_by_manifest_time() -> None:
    versions = [version(i) for i in range(30)]
    history = [record(v) for v in reversed(versions[10:29])]  # 19 + the new one: the cap of 20
    dataset = make(25, history, versions[28])
    created = {v: published_at(i) for i, v in enumerate(versions)}
    plan = publish(dataset, versions[29], stored_versions=sorted(versions), created=created)
    assert len(plan.status["history"]) == reconcile.HISTORY
    assert plan.delete_versions == sorted(versions[:5])  # 30 stored, 25 kept
    again = make(25, plan.status["history"], versions[29])
    survivors = sorted(set(versions) - set(plan.delete_versions))
    assert publish(again, versions[29], stored_versions=survivors, created=created).delete_versions == []


def test_failed_validations_in_history_do_not_push_out_valid_versions() -> None:
    valid = [version(i) for i in range(6)]
    refused = [version(100 + i) for i in range(17)]  # never published: no manifest, not stored
    history = [record(v, "Failed") for v in refused] + [record(valid[4]), record(valid[3])]
    dataset = make(5, history, valid[4])
    created = {v: published_at(i) for i, v in enumerate(valid)}
    plan = publish(dataset, valid[5], stored_versions=sorted(valid), created=created)
    assert plan.delete_versions == [valid[0]]


def test_referenced_versions_are_kept_even_when_oldest() -> None:
    stored = [version(i) for i in range(4)]
    created = {v: published_at(i) for i, v in enumerate(stored)}
    plan = publish(make(2, [], stored[2]), stored[3], stored_versions=stored, created=created, referenced={stored[0]})
    assert plan.delete_versions == [stored[1]]


def test_undated_and_tied_versions_are_kept() -> None:
    stored = [version(i) for i in range(4)]
    created = {stored[1]: NOW, stored[2]: NOW, stored[3]: NOW + timedelta(seconds=1)}  # stored[0]: no createdAt
    plan = publish(make(2, [], stored[2]), stored[3], stored_versions=stored, created=created)
    assert plan.delete_versions == []  # stored[1] and stored[2] share the 2nd newest second


class Kube:
    def list(self, api_version: str, kind: str, namespace: str, **_: Any) -> list[dict[str, Any]]:
        return []  # no TrainingRun, ModelDeployment or DriftMonitor names a version


class CountingStore(LocalStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gets: list[str] = []

    def get(self, key: str, limit: int | None = None) -> bytes:
        self.gets.append(key)
        return super().get(key, limit)


def test_the_handler_keeps_what_a_model_card_names_and_reads_each_card_and_manifest_once(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    memo = kopf.Memo(store=store, kube=Kube(), store_facts=StoreFacts())
    dataset = make(2, [], version(3))
    versions = DatasetVersions(store, "team-a", "digits")
    for i in range(4):
        versions.publish(version(i), {}, {"version": version(i), "createdAt": published_at(i).isoformat()})
    card = {"run": {"id": "mlp-1"}, "dataset": {"name": "digits", "version": version(0)}}
    ModelRegistry(store, "team-a", "mlp").register(b"onnx", card)  # its TrainingRun is gone
    other = {"run": {"id": "x-1"}, "dataset": {"name": "other", "version": version(1)}}
    ModelRegistry(store, "team-a", "x").register(b"onnx", other)
    name, _ = reconcile.current_run(dataset, NOW)
    versions.put_report(name, {"outcome": "Published", "reason": "Published", "version": version(3), "rows": 10})

    store.gets.clear()
    observed = handler._observe(memo, dataset, versions)
    assert observed.referenced == {version(0)} and observed.created[version(3)] == published_at(3)
    assert reconcile._retention(dataset, version(3), observed) == [version(1)]
    immutable = [k for k in store.gets if k.endswith((layout.MANIFEST, layout.CARD))]
    assert len(immutable) == 4 + 2  # each manifest and card once

    store.gets.clear()
    again = handler._observe(memo, dataset, versions)  # the timer's next look
    assert (again.stored_versions, again.created, again.referenced) == (
        observed.stored_versions,
        observed.created,
        observed.referenced,
    )
    assert not [k for k in store.gets if k.endswith((layout.MANIFEST, layout.CARD))]

"""TrainingRun's handlers take the object's lock: a spec edit racing the timer submits one pipeline run."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from lathe_core.runs import RunState
from lathe_core.store_local import LocalStore
from lathe_operator.backends.store_access import SharedAccess
from lathe_operator.handlers import training_run as handler
from lathe_operator.handlers.apply import Looks
from lathe_operator.handlers.views import Dependents

UID = "abcdef12-3456"
BODY = {
    "apiVersion": "lathe.dev/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "mlp", "namespace": "ns", "uid": UID, "generation": 1},
    "spec": {"dataset": {"name": "digits"}, "model": {"name": "clf"}},
}
READY = {"spec": {"target": "label"}, "status": {"currentVersion": "sha256:" + "1" * 64}}


class Arrivals:
    """The threads that have come into a reconcile of the object, as far as the fakes can see."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.changed = threading.Condition()

    def note(self) -> None:
        with self.changed:
            self.threads.add(threading.get_ident())
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: len(self.threads) >= count, timeout=10)


class ObjectLock:
    """The object's lock (``apply.exclusive``), noting each reconcile that has to wait for it."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.lock, self.arrivals = threading.RLock(), arrivals

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            self.arrivals.note()
            self.lock.acquire()

    def __exit__(self, *_: Any) -> None:
        self.lock.release()


class Pipelines:
    """A pipeline backend whose submit waits until a second reconcile has come in."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self.submitted: list[str] = []

    def state(self, namespace: str, run: str, experiment: str | None = None) -> RunState:
        self.arrivals.note()  # without the lock, the second reconcile gets this far
        return RunState("Running", run_id=run) if run in self.submitted else RunState("Absent")

    def run_url(self, run_id: str) -> str | None:
        return None

    def submit(self, namespace: str, run: str, *_: Any, **__: Any) -> str:
        self.arrivals.wait_for(2)
        self.submitted.append(run)
        return run


class Running:
    """kopf's ``stopped`` flag for a timer that nobody stops."""

    def __bool__(self) -> bool:
        return False

    async def wait(self) -> None:
        await asyncio.Event().wait()


class Kube:
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return READY


def _memo(tmp_path: Path, backend: Any, kube: Any, locks: dict[str, Any]) -> kopf.Memo:
    """What the operator's startup puts in kopf's memo, with this backend as its KFP and this API."""
    return kopf.Memo(
        config=SimpleNamespace(pipeline_backend="kfp"),
        pipelines={"kfp": backend},
        store=LocalStore(tmp_path),
        kube=kube,
        looks=Looks(),
        dependents=Dependents(),
        locks=locks,
        locks_guard=threading.Lock(),
        access=SharedAccess(),
    )


def test_a_spec_edit_racing_the_timer_submits_one_pipeline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)  # posted by kopf's event loop, absent here
    monkeypatch.setattr(handler, "_lineage", lambda memo, run: {})  # compiles the pipeline: not what is tested
    arrivals = Arrivals()
    pipelines = Pipelines(arrivals)
    memo = _memo(tmp_path, pipelines, Kube(), {UID: ObjectLock(arrivals)})
    errors: list[BaseException] = []

    def call(function: Any) -> None:
        try:
            function(body=kopf.Body(BODY), patch=kopf.Patch(), memo=memo, logger=logging.getLogger("test"))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    def timer(**kwargs: Any) -> None:  # the timer's turn, on an event loop of its own as kopf runs it
        asyncio.run(handler.poll_training_run(**kwargs, stopped=Running()))

    threads = [threading.Thread(target=call, args=(f,)) for f in (handler.reconcile_training_run, timer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(arrivals.threads) == 2  # the second came in while the first was submitting
    assert pipelines.submitted == ["mlp-abcdef12-1"]


class Unpublished:
    """A Dataset that exists and has no version yet."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {"spec": {"target": "label"}, "status": {}}


def test_a_run_waiting_for_its_dataset_asks_no_pipeline_backend_and_wakes_when_the_dataset_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    asked: list[str] = []
    backend = SimpleNamespace(state=lambda *args, **_: asked.append(args[1]) or RunState("Absent"))
    memo = _memo(tmp_path, backend, Unpublished(), {})
    patch = kopf.Patch()
    handler.reconcile_training_run(body=kopf.Body(BODY), patch=patch, memo=memo, logger=logging.getLogger("test"))
    assert patch["status"]["conditions"][0]["reason"] == "DatasetNotReady" and asked == []
    assert not memo.looks.due(UID)  # its next poll is seconds away

    dataset = {"metadata": {"name": "other", "namespace": "ns"}, "status": {"currentVersion": "sha256:" + "2" * 64}}
    asyncio.run(handler.dataset_published(body=kopf.Body(dataset), memo=memo))
    assert not memo.looks.due(UID)  # another Dataset: still waiting
    published = {"metadata": {"name": "digits", "namespace": "ns"}, "status": READY["status"]}
    asyncio.run(handler.dataset_published(body=kopf.Body(published), memo=memo))
    assert memo.looks.due(UID)  # woken: it looks now

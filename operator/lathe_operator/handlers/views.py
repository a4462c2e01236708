"""What handlers read from other Lathe objects, as the reconcilers see them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import kopf

from ..api.v1alpha1 import GROUP, VERSION
from ..reconcile.plan import DatasetView

K, V = TypeVar("K"), TypeVar("V")


class StoreFacts:
    """What immutable store objects say (a version's manifest, a model card), remembered between reconciles.

    Manifests and cards never change once written, so a timer that looks at them reads each
    one once. Each scope keeps only the keys of its latest listing, so memory stays bounded by
    what is stored. Thread-safe: kopf runs sync handlers in threads.
    """

    def __init__(self) -> None:
        self._known: dict[str, dict[Any, Any]] = {}
        self._lock = threading.Lock()

    def read(self, scope: str, keys: Iterable[K], fetch: Callable[[K], V]) -> dict[K, V]:
        """``fetch(key)`` for each of ``keys``, from memory when read before under ``scope``."""
        with self._lock:
            known = self._known.get(scope, {})
        found = {key: known[key] if key in known else fetch(key) for key in keys}
        with self._lock:
            self._known[scope] = found
        return found

    def forget(self, scope: str) -> None:
        with self._lock:
            self._known.pop(scope, None)


class Dependents:
    """Objects waiting on another object's status, woken when the watch sees it change (as controller-runtime's
    ``Watches`` with a map function enqueues them) instead of at their next poll. Thread-safe."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, str], set[str]] = {}
        self._lock = threading.Lock()

    def wait(self, on: tuple[str, str, str], uid: str, waiting: bool = True) -> None:
        """``uid`` waits on the object ``on`` (kind, namespace, name); ``waiting=False``: no longer."""
        with self._lock:
            if waiting:
                self._waiting.setdefault(on, set()).add(uid)
            elif uid in self._waiting.get(on, ()):
                self._waiting[on].discard(uid)
                if not self._waiting[on]:
                    del self._waiting[on]

    def woken(self, on: tuple[str, str, str]) -> set[str]:
        """The objects that waited on ``on``; each waits again if it still has to."""
        with self._lock:
            return self._waiting.pop(on, set())


def dataset_view(memo: kopf.Memo, namespace: str, name: str) -> DatasetView:
    """A Dataset object as TrainingRuns and batch ModelDeployments see it."""
    found = memo.kube.get(f"{GROUP}/{VERSION}", "Dataset", namespace, name)
    if found is None:
        return DatasetView()
    status, spec = found.get("status") or {}, found.get("spec") or {}
    return DatasetView(exists=True, current_version=status.get("currentVersion"), target=spec.get("target"))

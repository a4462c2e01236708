"""The model registry in the object store, in domain words (keys from ``layout``).

Versions are integers, monotonic and immutable; model.json is written last. Registering
the same training run twice returns the version it already has. A run takes its number by
creating ``claim.json`` (a conditional write), so two runs finishing together never share
one; a number claimed by a run that died before its card stays unused, or is its own again.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import layout
from .runs import read_report
from .store import ObjectStore, dumps, get_json, read_json

CARD, ONNX, CLAIM = layout.CARD, layout.ONNX, layout.CLAIM
ATTEMPTS = 100


def registered(store: ObjectStore, namespace: str) -> list[tuple[str, int]]:
    """Every registered model version of a namespace, as (model, version), from one listing."""
    found = (layout.model_card_of(namespace, key) for key in store.list(layout.models_prefix(namespace)))
    return sorted(card for card in found if card is not None)


class ModelRegistry:
    def __init__(self, store: ObjectStore, namespace: str, name: str) -> None:
        self.store, self.namespace, self.name = store, namespace, name
        self.prefix = layout.model_prefix(namespace, name)

    def key(self, version: int, file: str) -> str:
        return layout.model_file(self.namespace, self.name, version, file)

    def store_uri(self, version: int) -> str:
        return self.store.uri(self.key(version, ONNX))

    def report_key(self, run: str) -> str:
        return layout.training_report(self.namespace, self.name, run)

    def report(self, run: str) -> dict[str, Any] | None:
        return read_report(self.store, self.report_key(run))

    def versions(self) -> list[int]:
        found = (layout.model_version_of(self.namespace, self.name, key) for key in self.store.list(self.prefix))
        return sorted({v for v in found if v is not None})

    def card(self, version: int) -> dict[str, Any]:
        return read_json(self.store, self.key(version, CARD))

    def find_run(self, run_id: str) -> int | None:
        """The version a training run already registered, if any (newest first: runs are recent)."""
        for version in reversed(self.versions()):
            if self.card(version).get("run", {}).get("id") == run_id:
                return version
        return None

    def register(self, onnx: bytes, card: dict[str, Any]) -> tuple[int, str]:
        """Store model.onnx and its card as the next version; idempotent per ``card['run']['id']``."""
        run = card["run"]["id"]
        existing = self.find_run(run)
        if existing is not None:
            return existing, self.card(existing)["sha256"]
        version = self._claim(run)
        digest = hashlib.sha256(onnx).hexdigest()
        self.store.put(self.key(version, ONNX), onnx)
        self.store.put(
            self.key(version, CARD),
            dumps({**card, "version": version, "sha256": digest, "uri": self.key(version, ONNX)}),
        )
        return version, digest

    def _claim(self, run: str) -> int:
        """The number ``run`` holds: one it claimed before its card was written, else the next free one."""
        keys = self.store.list(self.prefix)
        claimed = {v for k in keys if (v := layout.model_version_of(self.namespace, self.name, k, CLAIM))}
        carded = {v for k in keys if (v := layout.model_version_of(self.namespace, self.name, k))}
        for version in sorted(claimed - carded):  # a run that died between its claim and its card
            if (get_json(self.store, self.key(version, CLAIM)) or {}).get("run") == run:
                return version
        version = max(claimed | carded | {0})
        for _ in range(ATTEMPTS):
            version += 1
            if self.store.create(self.key(version, CLAIM), dumps({"run": run})):
                return version
        raise RuntimeError(f"model {self.prefix}: no free version after {ATTEMPTS} tries")

    def onnx(self, version: int, recorded: str | None = None) -> bytes:
        """model.onnx, refused when its checksum does not match the card, or ``recorded`` (its TrainingRun's)."""
        data = self.store.get(self.key(version, ONNX))
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.card(version)["sha256"]:
            raise ValueError(f"model {self.prefix}{version} fails its sha256 check")
        if recorded and digest != recorded:
            raise ValueError(f"model {self.prefix}{version} does not match the sha256 its TrainingRun recorded")
        return data

    def promoted(self) -> int | None:
        pointer = get_json(self.store, layout.model_promoted(self.namespace, self.name))
        return int(pointer["version"]) if pointer else None

    def promote(self, version: int, reason: str = "") -> None:
        self.store.put(layout.model_promoted(self.namespace, self.name), dumps({"version": version, "reason": reason}))

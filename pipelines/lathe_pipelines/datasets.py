"""Dataset versions in the object store, in domain words.

    datasets/<namespace>/<name>/<hex>/data.parquet, profile.json, validation.json, manifest.json
    datasets/<namespace>/<name>/runs/<run>.json        # what each ingest run concluded

``<hex>`` is the version id without its ``sha256:`` prefix. The manifest is written last
and deleted first, so a reader that finds a manifest finds the whole version.
"""

from __future__ import annotations

import json
from typing import Any

from lathe_operator.backends.ports import ObjectNotFound, ObjectStore

MANIFEST = "manifest.json"


def dumps(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, default=str).encode()


def load(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """A JSON object from the store, or None when it is not there (yet)."""
    try:
        return dict(json.loads(store.get(key)))
    except ObjectNotFound:
        return None


class DatasetVersions:
    def __init__(self, store: ObjectStore, namespace: str, name: str) -> None:
        self.store = store
        self.prefix = f"datasets/{namespace}/{name}/"

    def key(self, version: str, file: str) -> str:
        return f"{self.prefix}{version.removeprefix('sha256:')}/{file}"

    def exists(self, version: str) -> bool:
        return self.store.exists(self.key(version, MANIFEST))

    def manifest(self, version: str) -> dict[str, Any]:
        return dict(json.loads(self.store.get(self.key(version, MANIFEST))))

    def publish(self, version: str, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        for file, data in files.items():
            self.store.put(self.key(version, file), data)
        self.store.put(self.key(version, MANIFEST), dumps(manifest))

    def versions(self) -> list[str]:
        """Published versions (those with a manifest)."""
        return sorted(
            "sha256:" + key[len(self.prefix):].split("/")[0]
            for key in self.store.list(self.prefix)
            if key.endswith("/" + MANIFEST) and not key[len(self.prefix):].startswith("runs/")
        )

    def delete(self, version: str) -> None:
        self.store.delete(self.key(version, MANIFEST))
        for key in self.store.list(self.key(version, "")):
            self.store.delete(key)

    def delete_all(self) -> None:
        for version in self.versions():
            self.delete(version)
        for key in self.store.list(self.prefix):
            self.store.delete(key)

    def put_report(self, run: str, report: dict[str, Any]) -> None:
        self.store.put(f"{self.prefix}runs/{run}.json", dumps(report))

    def report(self, run: str) -> dict[str, Any] | None:
        return load(self.store, f"{self.prefix}runs/{run}.json")

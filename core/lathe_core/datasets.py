"""Dataset versions in the object store, in domain words (keys from ``layout``).

The manifest is written last and deleted first, so a reader that finds a manifest
finds the whole version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import layout
from .runs import read_report, write_report
from .store import ObjectStore, dumps, read_json


class DatasetVersions:
    def __init__(self, store: ObjectStore, namespace: str, name: str) -> None:
        self.store, self.namespace, self.name = store, namespace, name
        self.prefix = layout.dataset_prefix(namespace, name)

    def key(self, version: str, file: str) -> str:
        return layout.dataset_file(self.namespace, self.name, version, file)

    def exists(self, version: str) -> bool:
        return self.store.exists(self.key(version, layout.MANIFEST))

    def manifest(self, version: str) -> dict[str, Any]:
        return read_json(self.store, self.key(version, layout.MANIFEST))

    def data(self, version: str) -> bytes:
        """The version's data.parquet."""
        return self.store.get(self.key(version, layout.DATA))

    def data_file(self, version: str, path: str) -> None:
        """The version's data.parquet written to ``path``, streamed (it may not fit in memory)."""
        self.store.get_file(self.key(version, layout.DATA), path)

    def publish(self, version: str, files: dict[str, bytes | Path], manifest: dict[str, Any]) -> None:
        """``files``: bytes, or a local file's path (uploaded from disk: data.parquet may not fit in memory)."""
        for file, data in files.items():
            if isinstance(data, Path):
                self.store.put_file(self.key(version, file), str(data))
            else:
                self.store.put(self.key(version, file), data)
        self.store.put(self.key(version, layout.MANIFEST), dumps(manifest))

    def versions(self) -> list[str]:
        """Published versions (those with a manifest)."""
        found = (layout.dataset_version_of(self.namespace, self.name, key) for key in self.store.list(self.prefix))
        return sorted(v for v in found if v)

    def delete(self, version: str) -> None:
        self.store.delete(self.key(version, layout.MANIFEST))
        for key in self.store.list(self.key(version, "")):
            self.store.delete(key)

    def delete_all(self) -> None:
        for version in self.versions():
            self.delete(version)
        for key in self.store.list(self.prefix):
            self.store.delete(key)

    def put_report(self, run: str, report: dict[str, Any]) -> None:
        write_report(self.store, layout.ingest_report(self.namespace, self.name, run), report)

    def report(self, run: str) -> dict[str, Any] | None:
        return read_report(self.store, layout.ingest_report(self.namespace, self.name, run))

    def put_failed_validation(self, run: str, result: dict[str, Any]) -> None:
        self.store.put(layout.ingest_validation(self.namespace, self.name, run), dumps(result))

"""The object-store port: bytes under keys, its errors, and JSON objects.

One bucket on an S3 server (MinIO in a cluster) or one local directory; both adapters
(``store_s3``, ``store_local``) answer the same contract test suite, and ``stores``
opens the configured one.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class StoreError(Exception):
    """Base of object store failures; ``reason`` is the condition reason a user sees."""

    reason = "StoreError"


class ObjectNotFound(StoreError):
    reason = "NotFound"


class StoreUnavailable(StoreError):
    reason = "StoreUnavailable"


class StoreAccessDenied(StoreError):
    reason = "StoreAccessDenied"


class ObjectTooLarge(StoreError):
    """An object past the size its reader allows (a tenant can write what the operator reads: bounded)."""

    reason = "ObjectTooLarge"


MAX_JSON = 4 << 20  # bytes of one JSON object Lathe reads (cards, manifests, reports, progress)


class ObjectStore(Protocol):
    """Bytes under keys in one bucket (S3/MinIO) or one directory (local mode)."""

    def put(self, key: str, data: bytes) -> None:
        """Write an object; readers see all of it or none of it."""

    def put_file(self, key: str, path: str) -> None:
        """Write an object from a local file without holding it in memory (data.parquet can be GBs)."""

    def get_file(self, key: str, path: str) -> None:
        """Read an object into a local file without holding it in memory; ObjectNotFound if there is none."""

    def create(self, key: str, data: bytes) -> bool:
        """Write an object only if there is none under ``key``, atomically: False when one exists (nothing is written).

        What claims a name among racing writers (S3 ``If-None-Match: *``; a hard link locally)."""

    def get(self, key: str, limit: int | None = None) -> bytes:
        """Read an object; ObjectNotFound when absent, ObjectTooLarge when it has more than ``limit`` bytes
        (read no further than that: a reader never holds more than it allows)."""

    def exists(self, key: str) -> bool:
        """Whether the object exists."""

    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, recursively, sorted."""

    def folders(self, prefix: str) -> list[str]:
        """The folders directly under ``prefix`` (which ends with '/'), each ending with '/', sorted."""

    def delete(self, key: str) -> None:
        """Remove an object; absent is fine."""

    def uri(self, key: str) -> str:
        """Where people and other tools find the object: s3://bucket/key or file:///path."""


def dumps(value: Any) -> bytes:
    """The JSON every Lathe object in the store is written as: indented, sorted keys, dates as text."""
    return json.dumps(value, indent=1, sort_keys=True, default=str).encode()


def read_json(store: ObjectStore, key: str, limit: int = MAX_JSON) -> dict[str, Any]:
    """A JSON object from the store, at most ``limit`` bytes (ObjectTooLarge past it); ObjectNotFound when absent,
    StoreError (reason InvalidObject) when it is not a JSON object."""
    raw = store.get(key, limit=limit)
    try:
        found = json.loads(raw)
    except ValueError as error:
        raise InvalidObject(f"{key} is not JSON: {str(error)[:200]}") from error
    if not isinstance(found, dict):
        raise InvalidObject(f"{key} is not a JSON object")
    return found


class InvalidObject(StoreError):
    reason = "InvalidObject"


def get_json(store: ObjectStore, key: str, limit: int = MAX_JSON) -> dict[str, Any] | None:
    """A JSON object from the store (bounded as ``read_json``), or None when it is not there (yet)."""
    try:
        return read_json(store, key, limit)
    except ObjectNotFound:
        return None


def put_json(store: ObjectStore, key: str, value: Any) -> None:
    store.put(key, dumps(value))

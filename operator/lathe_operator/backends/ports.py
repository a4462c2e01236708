"""The narrow interfaces plans are applied through; one adapter per system."""

from __future__ import annotations

from typing import Any, Protocol


class Kube(Protocol):
    """Children of Lathe objects in the Kubernetes API, addressed by apiVersion, kind and name."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""

    def ensure(self, manifest: dict[str, Any]) -> bool:
        """Create the object unless it exists; True when this call created it."""

    def apply(self, manifest: dict[str, Any]) -> str:
        """Create the object, or replace its spec when it differs from the one Lathe last applied.

        Returns "created", "updated" or "unchanged"."""

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace; empty when the kind is not served."""

    def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's decoded data or a ConfigMap's data; None when absent."""


class StoreError(Exception):
    """Base of object store failures; ``reason`` is the condition reason a user sees."""

    reason = "StoreError"


class ObjectNotFound(StoreError):
    reason = "NotFound"


class StoreUnavailable(StoreError):
    reason = "StoreUnavailable"


class StoreAccessDenied(StoreError):
    reason = "StoreAccessDenied"


class ObjectStore(Protocol):
    """Bytes under keys in one bucket (S3/MinIO) or one directory (local mode)."""

    def put(self, key: str, data: bytes) -> None:
        """Write an object; readers see all of it or none of it."""

    def get(self, key: str) -> bytes:
        """Read an object; ObjectNotFound when absent."""

    def exists(self, key: str) -> bool:
        """Whether the object exists."""

    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, recursively, sorted."""

    def delete(self, key: str) -> None:
        """Remove an object; absent is fine."""

    def uri(self, key: str) -> str:
        """Where people and other tools find the object: s3://bucket/key or file:///path."""

"""The narrow interfaces reconcilers' plans are applied through; one adapter per system."""

from __future__ import annotations

from typing import Any, Protocol


class Kube(Protocol):
    """Children of Lathe objects in the Kubernetes API, addressed by apiVersion, kind and name."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""

    def ensure(self, manifest: dict[str, Any]) -> bool:
        """Create the object unless it exists; True when this call created it."""

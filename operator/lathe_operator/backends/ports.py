"""The narrow interfaces plans are applied through; one adapter per system.

The object store's port lives in ``lathe_core.store``: every Lathe package uses it.
"""

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

    def patch(self, api_version: str, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        """A JSON merge patch of an object."""

    def annotate(self, api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Set annotations on an object (a merge patch of metadata only)."""

    def list(
        self, api_version: str, kind: str, namespace: str, *, labels: str | None = None, fields: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace, optionally by label and field selectors; empty when the kind is
        not served."""

    def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's decoded data or a ConfigMap's data; None when absent."""

    def metadata(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """An object's metadata alone (labels, annotations), never its data or spec; None when absent."""

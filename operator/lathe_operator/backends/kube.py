"""Kubernetes adapter for the ``Kube`` port, over the official client's dynamic API."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient


class KubeClient:
    """Gets and creates arbitrary objects; resource discovery is cached per (apiVersion, kind)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._dynamic = DynamicClient(api_client)
        self._resources: dict[tuple[str, str], Any] = {}

    @classmethod
    def from_environment(cls) -> KubeClient:
        """In-cluster config when running in a pod, else $KUBECONFIG or ~/.kube/config."""
        try:
            config.load_incluster_config()
            return cls(client.ApiClient())
        except config.ConfigException:
            return cls(config.new_client_from_config())

    def _resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self._dynamic.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found.to_dict()

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        try:
            found = self._resource(api_version, kind).get(namespace=namespace)
        except ApiException as error:
            if error.status == 404:
                return []
            raise
        return list(found.to_dict().get("items") or [])

    def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's (decoded) or ConfigMap's data; None when it does not exist."""
        found = self.get("v1", kind, namespace, name)
        if found is None:
            return None
        data = found.get("data") or {}
        if kind == "Secret":
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return dict(data)

    def ensure(self, manifest: dict[str, Any]) -> bool:
        meta = manifest["metadata"]
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        try:
            resource.create(body=manifest, namespace=meta.get("namespace"))
        except ApiException as error:
            if error.status == 409:  # AlreadyExists: a previous run (or operator) made it
                return False
            raise
        return True

    def apply(self, manifest: dict[str, Any]) -> str:
        if self.ensure(manifest):
            return "created"
        meta = manifest["metadata"]
        found = self.get(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        if found is None:  # deleted in between: the next reconcile creates it
            return "unchanged"
        current = found.get("metadata") or {}
        same = _contains(found.get("spec"), manifest["spec"]) and all(
            (current.get(k) or {}).get(key) == value for k in ("labels", "annotations")
            for key, value in (meta.get(k) or {}).items())
        if same:
            return "unchanged"
        patch = {"metadata": {k: meta[k] for k in ("labels", "annotations") if k in meta}, "spec": manifest["spec"]}
        self._resource(manifest["apiVersion"], manifest["kind"]).patch(
            body=patch, name=meta["name"], namespace=meta["namespace"], content_type="application/merge-patch+json")
        return "updated"


def _contains(found: Any, wanted: Any) -> bool:
    """``wanted`` is already in ``found`` (fields the API server defaulted do not count as differences)."""
    if isinstance(wanted, dict):
        return isinstance(found, dict) and all(_contains(found.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(found, list) and len(found) == len(wanted) and all(
            _contains(f, w) for f, w in zip(found, wanted, strict=True))
    return bool(found == wanted)

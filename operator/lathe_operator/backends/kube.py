"""Kubernetes adapter for the ``Kube`` port, over the official client's dynamic API."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

SPEC_HASH = "lathe.dev/spec-hash"
CONNECTIONS = 32  # kept open to the API server: one per worker thread (kopf's and the timers'), with room
# The API server answers with a PartialObjectMetadata: an object's metadata without its data or spec.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class KubeClient:
    """Gets and creates arbitrary objects; resource discovery is cached per (apiVersion, kind)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._dynamic = DynamicClient(api_client)
        self._resources: dict[tuple[str, str], Any] = {}

    @classmethod
    def from_environment(cls) -> KubeClient:
        """In-cluster config when running in a pod, else $KUBECONFIG or ~/.kube/config."""
        settings = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=settings)
        except config.ConfigException:
            config.load_kube_config(client_configuration=settings)
        settings.connection_pool_maxsize = CONNECTIONS
        return cls(client.ApiClient(settings))

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

    def list(
        self, api_version: str, kind: str, namespace: str, *, labels: str | None = None, fields: str | None = None
    ) -> list[dict[str, Any]]:
        try:
            found = self._resource(api_version, kind).get(
                namespace=namespace, label_selector=labels, field_selector=fields
            )
        except ApiException as error:
            if error.status == 404:
                return []
            raise
        return list(found.to_dict().get("items") or [])

    def metadata(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """An object's metadata alone: a Secret's labels are checked without its data reaching the operator."""
        try:
            found = self._resource(api_version, kind).get(
                name=name, namespace=namespace, header_params={"Accept": METADATA_ONLY}
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(found.to_dict().get("metadata") or {})

    def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's (decoded) or ConfigMap's data; None when it does not exist."""
        found = self.get("v1", kind, namespace, name)
        if found is None:
            return None
        data = found.get("data") or {}
        if kind == "Secret":
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return dict(data)

    def patch(self, api_version: str, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        """A JSON merge patch of an object."""
        self._resource(api_version, kind).patch(
            body=body, name=name, namespace=namespace, content_type="application/merge-patch+json"
        )

    def annotate(self, api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Set annotations with a merge patch: metadata only, so no spec field changes hands."""
        self._resource(api_version, kind).patch(
            body={"metadata": {"annotations": annotations}},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )

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
        """Create, or replace the spec (a ConfigMap's data) when it differs from what Lathe last applied (its hash
        is an annotation).

        Replacing the whole spec, not merging into it, is what lets a field removed from the
        rendering (a logger, a shadow predictor) disappear from the object too."""
        meta = manifest["metadata"]
        content = {k: manifest[k] for k in ("spec", "data", "binaryData") if k in manifest}  # a ConfigMap has no spec
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
        manifest = {
            **manifest,
            "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}), SPEC_HASH: digest}},
        }
        if self.ensure(manifest):
            return "created"
        found = self.get(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        if found is None:  # deleted in between: the next reconcile creates it
            return "unchanged"
        current = found.get("metadata") or {}
        if (current.get("annotations") or {}).get(SPEC_HASH) == digest:
            return "unchanged"
        ours = manifest["metadata"]
        spec, live = manifest.get("spec"), found.get("spec") or {}
        if isinstance(spec, dict) and "replicas" not in spec and "replicas" in live:
            manifest = {**manifest, "spec": {**spec, "replicas": live["replicas"]}}  # an autoscaler's to set
        body = {
            **manifest,
            "metadata": {
                **ours,
                "resourceVersion": current.get("resourceVersion"),
                "labels": {**(current.get("labels") or {}), **(ours.get("labels") or {})},
                "annotations": {**(current.get("annotations") or {}), **ours["annotations"]},
            },
        }
        self._resource(manifest["apiVersion"], manifest["kind"]).replace(
            body=body, name=meta["name"], namespace=meta["namespace"]
        )  # a 409 on a stale version is retried
        return "updated"

"""The cluster side of the plugin: the kube context and namespace as kubectl picks them, the four kinds by any name."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ..api.v1alpha1 import GROUP, VERSION

# plural -> (Kind, short name), in the order ``status`` shows them
KINDS = {
    "datasets": ("Dataset", "ds"),
    "trainingruns": ("TrainingRun", "tr"),
    "modeldeployments": ("ModelDeployment", "md"),
    "driftmonitors": ("DriftMonitor", "dm"),
}
ALIASES = {
    word: plural
    for plural, (kind, short) in KINDS.items()
    for word in (plural, plural[:-1], kind.lower(), short, f"{plural}.{GROUP}")
}


class PluginError(Exception):
    """Printed as it is, exit code 1."""


def plural(word: str) -> str:
    """The plural of any name kubectl would take for the kind, else kubectl's own refusal."""
    found = ALIASES.get(word.lower())
    if found is None:
        raise PluginError(f'error: the server doesn\'t have a resource type "{word}"')
    return found


def split_ref(ref: str) -> tuple[str, str]:
    """``ds/NAME`` or ``datasets.lathe.dev/NAME`` -> (plural, name)."""
    kind, slash, name = ref.partition("/")
    if not slash or not name:
        raise PluginError(f"error: arguments in resource/name form must have a single resource and name: {ref!r}")
    return plural(kind), name


class Cluster:
    """One kube context; ``namespace`` None with ``all_namespaces``."""

    def __init__(
        self,
        context: str | None = None,
        namespace: str | None = None,
        all_namespaces: bool = False,
        kubeconfig: str | None = None,
    ) -> None:
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
        try:
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except (config.ConfigException, OSError) as error:
            raise PluginError(
                "error: no current context: no kubeconfig found or it names no context "
                f"({error}); set KUBECONFIG, run `kubectl config use-context NAME` or pass --context"
            ) from error
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if chosen is None:
            raise PluginError(
                f'error: context "{context}" does not exist' if context else "error: current-context is not set"
            )
        self.context = chosen["name"]
        self.all_namespaces = all_namespaces
        self.namespace = None if all_namespaces else namespace or chosen["context"].get("namespace") or "default"
        self.api = config.new_client_from_config(config_file=kubeconfig, context=self.context)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.user = str(chosen["context"].get("user") or "")

    def _call(self, action: Any, what: str) -> Any:
        try:
            return action()
        except ApiException as error:
            if error.status == 404:
                raise PluginError(f"Error from server (NotFound): {what} not found") from error
            if error.status == 403:
                raise PluginError(f"Error from server (Forbidden): {_message(error)}") from error
            raise PluginError(f"Error from server ({error.reason}): {_message(error)}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise PluginError(f"error: cannot reach the cluster at {self.api.configuration.host}: {error}") from error

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        namespace = namespace or self.namespace or "default"
        return dict(
            self._call(
                lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, kind, name),
                f'{kind}.{GROUP} "{name}"',
            )
        )

    def list(self, kind: str) -> list[dict[str, Any]]:
        if self.namespace is None:
            found = self._call(lambda: self.custom.list_cluster_custom_object(GROUP, VERSION, kind), kind)
        else:
            found = self._call(
                lambda: self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, kind), kind
            )
        return sorted(found.get("items") or [], key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))

    def annotate(self, kind: str, name: str, annotations: dict[str, str]) -> None:
        namespace = self.namespace or "default"
        body = {"metadata": {"annotations": annotations}}
        self._call(
            lambda: self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, kind, name, body),
            f'{kind}.{GROUP} "{name}"',
        )

    def events(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """The object's Events, oldest first."""
        meta = obj["metadata"]
        found = self._call(
            lambda: self.core.list_namespaced_event(
                meta["namespace"], field_selector=f"involvedObject.uid={meta['uid']}"
            ),
            "events",
        )
        events = [self.api.sanitize_for_serialization(e) for e in found.items]
        return sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def pods(self, namespace: str, labels: str) -> list[dict[str, Any]]:
        found = self._call(lambda: self.core.list_namespaced_pod(namespace, label_selector=labels), "pods")
        return [self.api.sanitize_for_serialization(p) for p in found.items]

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        return str(
            self._call(
                lambda: self.core.read_namespaced_pod_log(pod, namespace, container=container),
                f'pods "{pod}"',
            )
        )

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data decoded, or None when it is missing or not readable by this user."""
        try:
            found = self.core.read_namespaced_secret(name, namespace)
        except (ApiException, urllib3.exceptions.HTTPError, OSError):
            return None
        return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}

    def whoami(self) -> str:
        """The authenticated user name (SelfSubjectReview), else the kubeconfig user's name."""
        try:
            review = client.AuthenticationV1Api(self.api).create_self_subject_review(
                client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
            )
            name = review.status.user_info.username if review.status and review.status.user_info else None
        except (ApiException, urllib3.exceptions.HTTPError, OSError):
            name = None
        return str(name or self.user or os.environ.get("USER") or "unknown")


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.body or error.reason)

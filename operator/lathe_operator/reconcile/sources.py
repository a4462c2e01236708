"""Which S3 sources a Dataset may read, and with whose keys: the checks made before an ingest starts.

Pure, like the reconcilers that call it: the credentials Secret's labels (which the handlers
read as metadata only, never its data) and the operator's settings come in as values.

- Credentials come only from a Secret labelled ``lathe.dev/credentials: "true"``, and only its
  ``accessKey`` and ``secretKey`` (the CRD accepts no other key names): a Dataset cannot hand a
  run a ServiceAccount token or the store Secret of its namespace.
- An S3 endpoint other than the store's must be listed in ``LATHE_SOURCE_ENDPOINTS``; without
  ``credentialsSecret`` a run falls back to Lathe's own store keys, so those go to the store's
  endpoint only.
- Lathe's own bucket is read with the Dataset's own keys, except its namespace's retrain data
  (``retrain/<namespace>/``, which a DriftMonitor's closed loop publishes): one namespace
  cannot publish what another namespace stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from lathe_core import layout
from lathe_core.settings import StoreSettings

from ..api.v1alpha1 import Dataset

CREDENTIALS_LABEL = "lathe.dev/credentials"
ENDPOINTS_SETTING = "LATHE_SOURCE_ENDPOINTS"
ENDPOINTS_VALUE = "sources.allowedEndpoints"  # the chart value that sets it


@dataclass(frozen=True)
class SourcePolicy:
    """The operator's store and the S3 endpoints sources may name besides the store's own."""

    store: StoreSettings = StoreSettings()
    endpoints: tuple[str, ...] = ()  # LATHE_SOURCE_ENDPOINTS, lower-case host[:port]

    def allows(self, endpoint: str) -> bool:
        return endpoint.lower() in (self.store.endpoint.lower(), *self.endpoints)


@dataclass(frozen=True)
class Refusal:
    """Why an ingest is not started; ``transient`` when the cause can go away by itself (a Secret made or labelled
    later), so the run is tried again with back-off."""

    reason: str
    message: str
    transient: bool = False


def check(dataset: Dataset, policy: SourcePolicy, secret_labels: dict[str, str] | None) -> Refusal | None:
    """None when the ingest may start. ``secret_labels``: the credentials Secret's labels, None when it does not
    exist (only read where the source names one)."""
    source, namespace = dataset.spec.source, dataset.namespace
    if not source.uri or not source.uri.startswith("s3://"):
        return None  # http(s), local and ConfigMap sources carry no keys; fetch.py vets their addresses
    endpoint = source.endpoint or policy.store.endpoint
    if not policy.allows(endpoint):
        listed = ", ".join(policy.endpoints) or "none"
        return Refusal(
            "EndpointNotAllowed",
            f"S3 endpoint {endpoint} is not allowed for sources: the operator's {ENDPOINTS_SETTING} (chart value "
            f"{ENDPOINTS_VALUE}) lists {listed} besides the store's own endpoint {policy.store.endpoint}",
        )
    ref = source.credentials_secret
    if ref is None:
        return _store_keys(source.uri, endpoint, namespace, policy)
    if secret_labels is None:
        return Refusal(
            "CredentialsNotFound",
            f"Secret {ref.name} not found in namespace {namespace}: create it with the keys accessKey and "
            f"secretKey and the label {CREDENTIALS_LABEL}=true",
            transient=True,
        )
    if secret_labels.get(CREDENTIALS_LABEL) != "true":
        return Refusal(
            "CredentialsNotAllowed",
            f"Secret {ref.name} is not labelled {CREDENTIALS_LABEL}=true: Lathe reads source credentials only from "
            f"Secrets that opt in. If it holds this source's S3 keys (accessKey, secretKey), run: "
            f"kubectl label secret {ref.name} -n {namespace} {CREDENTIALS_LABEL}=true",
            transient=True,
        )
    return None


def _store_keys(uri: str, endpoint: str, namespace: str, policy: SourcePolicy) -> Refusal | None:
    """Without ``credentialsSecret`` the run reads with Lathe's store keys: on the store's endpoint only, and in the
    store's bucket only the namespace's own retrain data."""
    store = policy.store
    if endpoint.lower() != store.endpoint.lower():
        return Refusal(
            "CredentialsRequired",
            f"An s3:// source on {endpoint} needs spec.source.credentialsSecret: Lathe's own store keys are used "
            f"with its store's endpoint {store.endpoint} only",
        )
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if store.local or bucket != store.bucket or _inside(key, layout.retrain_prefix(namespace)):
        return None
    return Refusal(
        "CredentialsRequired",
        f"s3://{bucket} is Lathe's own store: a source there needs its own spec.source.credentialsSecret; "
        f"Lathe's store keys read only this namespace's retrain data (s3://{bucket}/{layout.retrain_prefix(namespace)})",
    )


def _inside(key: str, prefix: str) -> bool:
    """Whether ``key`` is under ``prefix`` as S3 servers and HTTP clients see it: no ``.``, ``..`` or empty segment
    that one of them might fold into another path."""
    segments = key.split("/")
    if any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", ".."):
        return False
    return key.startswith(prefix)

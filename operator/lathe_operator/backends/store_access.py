"""Each workload namespace's store credentials: made by an administrator (shared), or minted here.

``NamespaceAccess`` gives a namespace its own IAM user, confined by an inline policy to the
namespace's prefixes (``store_identity``), and writes its keys into the namespace's
store Secret (and Seldon's storage Secret), which run Jobs, pipeline steps and model servers
read. The operator keeps its own keys; no workload ever gets them.

Restart-safe: the user and its policy are put every time (both idempotent); the user carries Lathe's tag,
and an existing user without it is refused unless it holds nothing yet (``_adopt``); a key is minted
only when the Secret does not hold one of the user's live keys, and then every other key of the
user is deleted first, so a key minted by an operator killed before it wrote the Secret does
not live on.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from lathe_core.settings import StoreSettings
from lathe_core.store import StoreError
from lathe_core.store_s3 import S3Store

from . import store_identity as identity
from .ports import Kube
from .store_iam import IamClient

RECHECK = 300.0  # seconds: a Secret someone deleted, or a key someone revoked, comes back within this


class StoreSecretConflict(StoreError):
    """A Secret of the name Lathe writes exists and is not Lathe's: it is left alone."""

    reason = "StoreSecretConflict"


class StoreIdentityConflict(StoreError):
    """An IAM user of the name Lathe gives a namespace exists and is not Lathe's: it is neither adopted nor changed."""

    reason = "StoreIdentityConflict"


class StoreAccess(Protocol):
    def ensure(self, namespace: str) -> None:
        """Make sure the namespace's workloads can reach its part of the store."""


class SharedAccess:
    """The namespace's store Secret is an administrator's (docs/install.md): nothing to do."""

    def ensure(self, namespace: str) -> None:
        return None


class NamespaceAccess:
    def __init__(
        self, kube: Kube, iam: IamClient, store: StoreSettings, seldon_secret: str = "", recheck: float = RECHECK
    ) -> None:
        self.kube, self.iam, self.store, self.seldon_secret, self.recheck = kube, iam, store, seldon_secret, recheck
        # Made with the operator's keys: a namespace's identity may not create (or even ask about) the bucket.
        self.bucket = S3Store(
            store.endpoint, store.access_key, store.secret_key, store.bucket, secure=store.secure, region=store.region
        )
        self._ensured: dict[str, float] = {}  # namespace: when it was last made sure of
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def ensure(self, namespace: str) -> None:
        if self._recent(namespace):
            return
        with self._lock:
            lock = self._locks.setdefault(namespace, threading.Lock())
        with lock:  # one mint per namespace at a time (two at once would leave a key behind); others go on
            if self._recent(namespace):
                return
            self._ensure(namespace)
            self._ensured[namespace] = time.monotonic()

    def _recent(self, namespace: str) -> bool:
        ensured = self._ensured.get(namespace)
        return ensured is not None and time.monotonic() - ensured < self.recheck

    def _ensure(self, namespace: str) -> None:
        self.bucket.ensure_bucket()  # once per operator
        user = identity.user_name(namespace)
        if self.iam.create_user(user, identity.USER_TAGS):
            self.iam.tag_user(user, identity.USER_TAGS)  # again: some IAM servers (SeaweedFS) drop CreateUser's tags
        else:
            self._adopt(user, namespace)
        self.iam.put_user_policy(user, identity.POLICY, identity.policy(self.store.bucket, namespace))
        names = [self.store.secret_name] + ([self.seldon_secret] if self.seldon_secret else [])
        for name in names:
            metadata = self.kube.metadata("v1", "Secret", namespace, name)
            if metadata is not None and not identity.lathes(metadata):
                raise StoreSecretConflict(
                    f"Secret {name} in {namespace} was not written by Lathe; with store isolation the operator"
                    " writes it: delete it, and Lathe writes one with this namespace's own keys"
                )
        held = self.kube.data("Secret", namespace, self.store.secret_name) or {}
        access, secret = held.get("accessKey", ""), held.get("secretKey", "")
        if not (access in self.iam.access_keys(user) and secret):
            for key in self.iam.all_access_keys(user):  # a killed operator's, or a revoked one
                self.iam.delete_access_key(user, key)
            access, secret = self.iam.create_access_key(user)
            self.kube.apply(identity.store_secret(namespace, self.store.secret_name, user, access, secret))
        if self.seldon_secret:
            seldon = self.kube.data("Secret", namespace, self.seldon_secret) or {}
            if seldon.get(identity.SELDON_KEY) != access:  # written after the store Secret: catch up with it
                self.kube.apply(identity.seldon_secret(namespace, self.seldon_secret, user, access, secret, self.store))

    def _adopt(self, user: str, namespace: str) -> None:
        """An existing user is Lathe's when it carries Lathe's tag. One without it is taken only when it can do
        nothing yet (no policy and no key: what an operator killed between creating and tagging it leaves);
        any other is refused, so Lathe never hands a namespace someone else's user and its other powers."""
        if self.iam.user_tags(user).get(identity.OWNER_TAG) == identity.USER_TAGS[identity.OWNER_TAG]:
            return
        powers, keys = self.iam.user_policies(user), self.iam.all_access_keys(user)
        if (powers or keys) and not self._made_before_tags(user, namespace, powers, keys):
            raise StoreIdentityConflict(
                f"IAM user {user} exists without the tag {identity.OWNER_TAG}={identity.USER_TAGS[identity.OWNER_TAG]}"
                f" (policies: {', '.join(powers[:5]) or 'none'}): Lathe did not create it and will not take it over"
                f" for namespace {namespace}; delete or rename it, or tag it to hand it to Lathe"
            )
        self.iam.tag_user(user, identity.USER_TAGS)

    def _made_before_tags(self, user: str, namespace: str, powers: list[str], keys: list[str]) -> bool:
        """A user an earlier Lathe made (before it tagged them): Lathe's policy alone, and a key of it in the
        namespace's store Secret that Lathe wrote for this very user."""
        if powers != [identity.POLICY]:
            return False
        metadata = self.kube.metadata("v1", "Secret", namespace, self.store.secret_name) or {}
        if ((metadata.get("annotations") or {}).get(identity.IDENTITY)) != user:
            return False
        held = self.kube.data("Secret", namespace, self.store.secret_name) or {}
        return bool(held.get("accessKey")) and held.get("accessKey") in keys


def store_access(
    kube: Kube,
    store: StoreSettings,
    isolation: str,
    iam_endpoint: str,
    seldon_secret: str = "",
    iam_region: str = "us-east-1",
) -> StoreAccess:
    if isolation != "namespace":
        return SharedAccess()
    iam = IamClient(iam_endpoint, store.access_key, store.secret_key, iam_region)
    return NamespaceAccess(kube, iam, store, seldon_secret)

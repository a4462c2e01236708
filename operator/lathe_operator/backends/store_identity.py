"""A namespace's own store identity: its name, the policy that confines it, the Secrets that carry it.

Every key Lathe writes is ``<area>/<namespace>/...`` (``lathe_core.layout.AREAS``), so an
identity allowed those prefixes and nothing else can do all its namespace's work and cannot
read, list, overwrite or delete another namespace's data. The policy is AWS's own language
(object actions on the prefixes, listing the bucket only under them), which AWS IAM, SeaweedFS
and Ceph RGW enforce.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from lathe_core import layout
from lathe_core.settings import StoreSettings

POLICY = "lathe-namespace"  # the inline policy's name
IDENTITY = "lathe.dev/store-identity"  # annotation on the Secrets: the user their keys belong to
MANAGED = {"app.kubernetes.io/managed-by": "lathe"}
OWNER_TAG = "lathe.dev/managed-by"  # on the IAM users Lathe creates: only those are adopted on a restart
USER_TAGS = {OWNER_TAG: "lathe"}
SELDON_KEY = "RCLONE_CONFIG_S3_ACCESS_KEY_ID"
OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]


def user_name(namespace: str) -> str:
    """``lathe-<namespace>``; IAM user names stop at 64 characters, namespace names at 63. A longer one is
    ``lathe--<start>-<hash>``: no namespace begins with "-", so no short name can take it."""
    name = f"lathe-{namespace}"
    if len(name) <= 64:
        return name
    return f"lathe--{namespace[:47]}-{hashlib.sha256(namespace.encode()).hexdigest()[:9]}"


def policy(bucket: str, namespace: str) -> dict[str, Any]:
    prefixes = layout.namespace_prefixes(namespace)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnObjects",
                "Effect": "Allow",
                "Action": OBJECT_ACTIONS,
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*" for prefix in prefixes],
            },
            {
                "Sid": "ListOwnPrefixes",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
            },
        ],
    }


def store_secret(namespace: str, name: str, user: str, access_key: str, secret_key: str) -> dict[str, Any]:
    """What run Jobs, pipeline steps and model servers read (``accessKey``, ``secretKey``)."""
    return _secret(namespace, name, user, {"accessKey": access_key, "secretKey": secret_key})


def seldon_secret(
    namespace: str, name: str, user: str, access_key: str, secret_key: str, store: StoreSettings
) -> dict[str, Any]:
    """Seldon's storage initializer's rclone settings (manifests/seldon/README.md), with the same keys."""
    scheme = "https" if store.secure else "http"
    return _secret(
        namespace,
        name,
        user,
        {
            "RCLONE_CONFIG_S3_TYPE": "s3",
            "RCLONE_CONFIG_S3_PROVIDER": "Other",
            "RCLONE_CONFIG_S3_ENV_AUTH": "false",
            "RCLONE_CONFIG_S3_ENDPOINT": f"{scheme}://{store.endpoint}",
            "RCLONE_CONFIG_S3_REGION": store.region,
            SELDON_KEY: access_key,
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": secret_key,
        },
    )


def _secret(namespace: str, name: str, user: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": MANAGED, "annotations": {IDENTITY: user}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def lathes(metadata: dict[str, Any] | None) -> bool:
    """Whether an existing Secret is one Lathe wrote (only those are replaced)."""
    return bool(metadata) and IDENTITY in ((metadata or {}).get("annotations") or {})

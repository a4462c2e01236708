"""Open the configured object store: an S3 bucket (MinIO or any S3 server) or a local directory.

Kept apart from the port so that code which only passes stores around never loads the
S3 client.
"""

from __future__ import annotations

from .settings import StoreSettings
from .store import ObjectStore
from .store_local import LocalStore
from .store_s3 import S3Store


def open_store(settings: StoreSettings) -> ObjectStore:
    if settings.local:
        return LocalStore(settings.uri.removeprefix("file://"))
    return S3Store(
        settings.endpoint,
        settings.access_key,
        settings.secret_key,
        settings.bucket,
        secure=settings.secure,
        region=settings.region,
    )


def open_configured_store() -> ObjectStore:
    """The store that LATHE_STORE_* name: what Jobs, pipeline steps and model servers open."""
    return open_store(StoreSettings.from_env())

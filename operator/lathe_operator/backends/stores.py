"""Open the configured object store: S3 (MinIO or any S3 server) or a local directory."""

from __future__ import annotations

from ..config import StoreSettings
from .ports import ObjectStore
from .store_local import LocalStore
from .store_s3 import S3Store


def open_store(settings: StoreSettings) -> ObjectStore:
    if settings.local:
        return LocalStore(settings.uri.removeprefix("file://"))
    return S3Store(settings.endpoint, settings.access_key, settings.secret_key, settings.bucket, secure=settings.secure)

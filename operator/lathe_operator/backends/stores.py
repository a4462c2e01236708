"""Open the configured object store: S3 (MinIO or any S3 server) or a local directory."""

from __future__ import annotations

from ..config import Config, StoreSettings
from .ports import ObjectStore
from .store_local import LocalStore
from .store_s3 import S3Store


def open_store(settings: StoreSettings) -> ObjectStore:
    if settings.local:
        return LocalStore(settings.uri.removeprefix("file://"))
    return S3Store(settings.endpoint, settings.access_key, settings.secret_key, settings.bucket, secure=settings.secure)


def open_configured_store() -> ObjectStore:
    """The store that LATHE_STORE_* name: what Jobs, pipeline steps and model servers open."""
    return open_store(Config.from_env().store)

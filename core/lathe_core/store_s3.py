"""S3 object store through the ``minio`` client: MinIO in a cluster, any S3 server elsewhere."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TypeVar

import urllib3
from minio import Minio
from minio.error import S3Error

from .store import ObjectNotFound, ObjectTooLarge, StoreAccessDenied, StoreError, StoreUnavailable

T = TypeVar("T")
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class S3Store:
    """One bucket; created on first use when the credentials allow it."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
    ) -> None:
        # Few quick retries: an unreachable store should surface as StoreUnavailable, not hang a reconcile.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3, read=60),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
        )
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
        )
        self.endpoint, self.bucket = endpoint, bucket
        self._bucket_checked = False

    def __repr__(self) -> str:
        return f"S3Store({self.endpoint!r}, bucket={self.bucket!r})"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _call(self, action: Callable[[], T], key: str = "") -> T:
        try:
            return action()
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise ObjectNotFound(f"{self.bucket}/{key}") from error
            if error.code in _DENIED:
                raise StoreAccessDenied(f"{self.endpoint}: {error.code}") from error
            raise StoreError(f"{self.endpoint}: {error.code}: {error.message}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise StoreUnavailable(f"{self.endpoint} unreachable: {error}") from error

    def ensure_bucket(self) -> None:
        """An identity confined to some prefixes may not ask about the bucket: it was made for it,
        and a write it may not make fails on its own."""
        if not self._bucket_checked:
            try:
                if not self._call(lambda: self.client.bucket_exists(self.bucket)):
                    self._call(lambda: self.client.make_bucket(self.bucket))
            except StoreAccessDenied:
                pass
            self._bucket_checked = True

    def put(self, key: str, data: bytes) -> None:
        self.ensure_bucket()
        self._call(lambda: self.client.put_object(self.bucket, key, io.BytesIO(data), len(data)), key)

    def put_file(self, key: str, path: str) -> None:
        """A multipart upload from the file: the object never sits in memory whole."""
        self.ensure_bucket()
        self._call(lambda: self.client.fput_object(self.bucket, key, path), key)

    def get_file(self, key: str, path: str) -> None:
        """Download an object to a local file, streamed."""
        self._call(lambda: self.client.fget_object(self.bucket, key, path), key)

    def create(self, key: str, data: bytes) -> bool:
        """A conditional PUT (``If-None-Match: *``: AWS S3, MinIO, S3Proxy 4); 412 means the key is taken.

        minio's put_object sends no conditional headers, so this goes through its request method."""
        self.ensure_bucket()
        headers = {"If-None-Match": "*", "Content-Length": str(len(data))}
        try:
            self._call(lambda: self.client._execute("PUT", self.bucket, key, body=data, headers=headers), key)
        except StoreError as error:
            if "PreconditionFailed" in str(error) or "ConditionalRequestConflict" in str(error):
                return False
            raise
        return True

    def get(self, key: str, limit: int | None = None) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                if limit is None:
                    return bytes(response.read())
                data = bytearray()
                for chunk in response.stream(64 << 10):
                    data += chunk
                    if len(data) > limit:  # the rest is never read: the connection is closed, not reused
                        raise ObjectTooLarge(f"{self.bucket}/{key} has more than {limit} bytes")
                return bytes(data)
            finally:
                response.close()
                response.release_conn()

        return self._call(read, key)

    def exists(self, key: str) -> bool:
        try:
            self._call(lambda: self.client.stat_object(self.bucket, key), key)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str) -> list[str]:
        try:
            found = self._call(
                lambda: [o.object_name for o in self.client.list_objects(self.bucket, prefix, recursive=True)]
            )
        except ObjectNotFound:
            return []
        return sorted(str(k) for k in found)

    def folders(self, prefix: str) -> list[str]:
        """One delimited listing: S3's common prefixes under ``prefix``."""
        try:
            found = self._call(lambda: list(self.client.list_objects(self.bucket, prefix, recursive=False)))
        except ObjectNotFound:
            return []
        return sorted(str(o.object_name) for o in found if o.is_dir)

    def delete(self, key: str) -> None:
        self._call(lambda: self.client.remove_object(self.bucket, key), key)

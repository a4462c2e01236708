"""The S3 server the tests use is real: the minio client writes, reads, lists and is refused."""

from __future__ import annotations

import io

import pytest
from minio import Minio
from minio.error import S3Error

from tests.servers.s3 import S3Server


def test_minio_client_round_trip(s3: S3Server) -> None:
    store = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    if not store.bucket_exists("roundtrip"):
        store.make_bucket("roundtrip")
    payload = b"label,pixel\n1,0.5\n"
    store.put_object("roundtrip", "datasets/a/data.csv", io.BytesIO(payload), len(payload))
    assert store.get_object("roundtrip", "datasets/a/data.csv").read() == payload
    assert [o.object_name for o in store.list_objects("roundtrip", prefix="datasets/", recursive=True)] == [
        "datasets/a/data.csv"
    ]
    assert store.stat_object("roundtrip", "datasets/a/data.csv").size == len(payload)


def test_wrong_credentials_are_refused(s3: S3Server) -> None:
    store = Minio(s3.endpoint, access_key=s3.access_key, secret_key="wrong", secure=False)
    with pytest.raises(S3Error) as error:
        store.list_buckets()
    assert error.value.code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")

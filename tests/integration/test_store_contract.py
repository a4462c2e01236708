"""One contract, every ObjectStore adapter: the local directory and S3 (against the real S3 server)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from lathe_core.store import ObjectNotFound, ObjectStore, StoreAccessDenied, StoreUnavailable
from lathe_core.store_local import LocalStore
from lathe_core.store_s3 import S3Store
from tests.servers.s3 import S3Server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        s3: S3Server = request.getfixturevalue("s3")
        yield S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"contract-{secrets.token_hex(3)}")


def test_put_get_exists_list_delete(store: ObjectStore) -> None:
    assert store.list("datasets/") == []
    store.put("datasets/ns/a/1/data.parquet", b"one")
    store.put("datasets/ns/a/1/manifest.json", b"{}")
    store.put("datasets/ns/b/1/manifest.json", b"{}")
    assert store.get("datasets/ns/a/1/data.parquet") == b"one"
    assert store.exists("datasets/ns/a/1/manifest.json") and not store.exists("datasets/ns/a/2/manifest.json")
    assert store.list("datasets/ns/a/") == ["datasets/ns/a/1/data.parquet", "datasets/ns/a/1/manifest.json"]
    store.put("datasets/ns/a/1/data.parquet", b"two")  # overwrite is whole
    assert store.get("datasets/ns/a/1/data.parquet") == b"two"
    store.delete("datasets/ns/a/1/data.parquet")
    store.delete("datasets/ns/a/1/data.parquet")  # absent is fine
    assert store.list("datasets/ns/a/") == ["datasets/ns/a/1/manifest.json"]


def test_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("nothing/here")


def test_s3_wrong_credentials_and_unreachable_endpoint(s3: S3Server) -> None:
    with pytest.raises(StoreAccessDenied):
        S3Store(s3.endpoint, s3.access_key, "wrong", "denied").put("k", b"v")
    with pytest.raises(StoreUnavailable):
        S3Store("127.0.0.1:1", "a", "b", "down").get("k")

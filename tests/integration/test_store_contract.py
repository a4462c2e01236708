"""One contract, every ObjectStore adapter: the local directory and S3 (against S3Proxy and SeaweedFS)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from lathe_core.registry import ModelRegistry
from lathe_core.store import ObjectNotFound, ObjectStore, ObjectTooLarge, StoreAccessDenied, StoreUnavailable
from lathe_core.store_local import LocalStore
from lathe_core.store_s3 import S3Store
from tests.servers.s3 import S3Server
from tests.servers.seaweedfs import SeaweedServer


@pytest.fixture(params=["local", "s3", "seaweedfs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    elif request.param == "seaweedfs":
        weed: SeaweedServer = request.getfixturevalue("seaweedfs")
        bucket = f"contract-{secrets.token_hex(3)}"
        yield S3Store(weed.endpoint, weed.access_key, weed.secret_key, bucket, region="us-east-1")
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


def test_folders_are_the_next_level_only(store: ObjectStore) -> None:
    for key in (
        "logs/ns/web/2026-12-01/07/a.parquet",
        "logs/ns/web/2026-12-01/08/b.parquet",
        "logs/ns/web/2026-12-02/00/c",
    ):
        store.put(key, b"x")
    store.put("logs/ns/web/loose.txt", b"x")  # an object, not a folder
    assert store.folders("logs/ns/web/") == ["logs/ns/web/2026-12-01/", "logs/ns/web/2026-12-02/"]
    assert store.folders("logs/ns/web/2026-12-01/") == ["logs/ns/web/2026-12-01/07/", "logs/ns/web/2026-12-01/08/"]
    assert store.folders("logs/ns/none/") == []


def test_a_read_with_a_limit_stops_past_it(store: ObjectStore) -> None:
    """What a tenant can write, the operator reads bounded: the limit holds on every adapter."""
    body = secrets.token_bytes(300_000)  # several of the S3 reader's 64 KiB chunks
    store.put("models/ns/m/1/model.json", body)
    assert store.get("models/ns/m/1/model.json", limit=300_000) == body
    with pytest.raises(ObjectTooLarge):
        store.get("models/ns/m/1/model.json", limit=299_999)
    assert store.get("models/ns/m/1/model.json", limit=300_000) == body  # the refused read left no bad state


def test_put_file_uploads_from_disk(store: ObjectStore, tmp_path: Path) -> None:
    """data.parquet goes up from a file: larger than one read buffer, so the copy loops."""
    body = secrets.token_bytes(3 * 2**20 + 7)
    (tmp_path / "data.parquet").write_bytes(body)
    store.put_file("datasets/ns/a/1/data.parquet", str(tmp_path / "data.parquet"))
    assert store.get("datasets/ns/a/1/data.parquet") == body
    assert store.list("datasets/ns/a/") == ["datasets/ns/a/1/data.parquet"]  # no temporary file left behind
    store.get_file("datasets/ns/a/1/data.parquet", str(tmp_path / "back.parquet"))  # and comes back to a file
    assert (tmp_path / "back.parquet").read_bytes() == body


def test_missing_object_is_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("nothing/here")
    with pytest.raises(ObjectNotFound):
        store.get_file("nothing/here", str(tmp_path / "nothing"))


def test_s3_wrong_credentials_and_unreachable_endpoint(s3: S3Server) -> None:
    with pytest.raises(StoreAccessDenied):
        S3Store(s3.endpoint, s3.access_key, "wrong", "denied").put("k", b"v")
    with pytest.raises(StoreUnavailable):
        S3Store("127.0.0.1:1", "a", "b", "down").get("k")


def test_create_writes_only_what_is_absent(store: ObjectStore) -> None:
    assert store.create("models/ns/m/1/claim.json", b"first") is True
    assert store.create("models/ns/m/1/claim.json", b"second") is False  # taken: nothing overwritten
    assert store.get("models/ns/m/1/claim.json") == b"first"
    assert store.list("models/ns/m/") == ["models/ns/m/1/claim.json"]


def test_racing_registrations_never_share_a_version(store: ObjectStore) -> None:
    """Eight training runs of one model register at once, each having listed the same versions: each gets its own."""
    racers = 8
    barrier = threading.Barrier(racers)

    class Racing:  # every racer has listed before any of them writes: all compute the same next version
        def __init__(self, inner: ObjectStore) -> None:
            self.inner, self.calls = inner, 0

        def list(self, prefix: str) -> list[str]:
            found = self.inner.list(prefix)
            self.calls += 1
            if self.calls == 2:  # the listing the next version is computed from
                barrier.wait(timeout=30)
            return found

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    ModelRegistry(store, "ns", "m").register(b"onnx-0", {"run": {"id": "run-0"}})

    def register(i: int) -> tuple[int, str]:
        return ModelRegistry(Racing(store), "ns", "m").register(f"onnx-{i}".encode(), {"run": {"id": f"run-{i}"}})

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(register, range(1, racers + 1)))
    versions = [v for v, _ in results]
    assert sorted(versions) == list(range(2, racers + 2)), versions
    registry = ModelRegistry(store, "ns", "m")
    for i, (version, digest) in enumerate(results, start=1):
        card = registry.card(version)
        assert card["run"]["id"] == f"run-{i}" and registry.onnx(version) == f"onnx-{i}".encode()
        assert card["sha256"] == digest
    # a run registering again gets its version back, also after a crash between its claim and its card
    assert registry.register(b"onnx-3", {"run": {"id": "run-3"}})[0] == versions[2]


def test_a_run_that_died_after_its_claim_takes_its_number_back(store: ObjectStore) -> None:
    registry = ModelRegistry(store, "ns", "m")
    assert store.create(registry.key(1, "claim.json"), b'{"run": "run-a"}')  # then the run died
    assert registry.register(b"b", {"run": {"id": "run-b"}})[0] == 2  # 1 is taken: skipped
    assert registry.register(b"a", {"run": {"id": "run-a"}})[0] == 1  # its own again
    assert registry.versions() == [1, 2] and registry.onnx(1) == b"a"

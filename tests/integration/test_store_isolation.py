"""Store isolation between namespaces, against SeaweedFS (a store that enforces IAM policies).

With ``LATHE_STORE_ISOLATION=namespace`` the operator gives each namespace a store identity of
its own through the store's IAM API, confined to ``<area>/<namespace>/...``, and writes its keys
into the namespace's store Secret. Tested: the identity does its namespace's work in every area
and is refused everything of another namespace's (read, overwrite, list, delete); a restarted
operator mints nothing new; a deleted Secret brings a new key and the old one stops working; a
Secret Lathe did not write is left alone with a stated reason; and on the real node, ingest Jobs
publish with their namespace's keys while a pod in one namespace, holding its Secret, cannot read
or overwrite the other namespace's data.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as kube_client
from minio import Minio

from lathe_core import layout
from lathe_core.settings import StoreSettings
from lathe_core.store import StoreAccessDenied
from lathe_core.store_s3 import S3Store
from lathe_operator.backends import store_identity
from lathe_operator.backends.kube import KubeClient
from lathe_operator.backends.store_access import (
    NamespaceAccess,
    StoreIdentityConflict,
    StoreSecretConflict,
    store_access,
)
from lathe_operator.backends.store_iam import IamClient
from lathe_pipelines.sample_data import digits
from tests.conftest import eventually
from tests.integration.conftest import Kubectl, OperatorProcess
from tests.integration.test_dataset import dataset, ready, status
from tests.servers.controlplane import ControlPlane
from tests.servers.node import Node, images
from tests.servers.seaweedfs import SeaweedServer

SECRET = "lathe-store-scoped"


@pytest.fixture
def other(api: kube_client.ApiClient) -> Iterator[str]:
    """A second namespace: the neighbour whose data must stay out of reach."""
    core = kube_client.CoreV1Api(api)
    name = f"other-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def settings(weed: SeaweedServer, bucket: str) -> StoreSettings:
    return StoreSettings(
        uri=f"s3://{bucket}",
        endpoint=weed.endpoint,
        access_key=weed.access_key,
        secret_key=weed.secret_key,
        secret_name=SECRET,
    )


def held(api: kube_client.ApiClient, namespace: str, name: str = SECRET) -> dict[str, str]:
    found = kube_client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}


def as_namespace(weed: SeaweedServer, bucket: str, keys: dict[str, str]) -> S3Store:
    return S3Store(weed.endpoint, keys["accessKey"], keys["secretKey"], bucket, region="us-east-1")


def test_each_namespace_gets_an_identity_confined_to_its_own_prefixes(
    api: kube_client.ApiClient, namespace: str, other: str, seaweedfs: SeaweedServer
) -> None:
    bucket = f"iso-{namespace}"
    store = settings(seaweedfs, bucket)
    admin = S3Store(seaweedfs.endpoint, seaweedfs.access_key, seaweedfs.secret_key, bucket, region="us-east-1")
    admin.put(layout.model_file(other, "m", 1), b"the neighbour's model")
    access = store_access(KubeClient(api), store, "namespace", seaweedfs.url, seldon_secret="lathe-seldon-storage")
    access.ensure(namespace)
    access.ensure(other)

    mine = held(api, namespace)
    scoped = as_namespace(seaweedfs, bucket, mine)
    for prefix in layout.namespace_prefixes(namespace):  # its own work, in every area
        scoped.put(f"{prefix}x/file", b"ours")
        assert scoped.get(f"{prefix}x/file") == b"ours" and scoped.list(prefix) == [f"{prefix}x/file"]
        scoped.delete(f"{prefix}x/file")
    theirs = layout.model_file(other, "m", 1)
    for attempt in (
        lambda: scoped.get(theirs),
        lambda: scoped.put(theirs, b"overwritten"),
        lambda: scoped.delete(theirs),
        lambda: scoped.list(layout.models_prefix(other)),
        lambda: scoped.list("models/"),  # nor a listing of every namespace's names
        lambda: scoped.put(f"elsewhere/{namespace}/x", b"outside every area"),
    ):
        with pytest.raises(StoreAccessDenied):
            attempt()
    assert admin.get(theirs) == b"the neighbour's model"
    with pytest.raises(StoreAccessDenied):  # nor may it make itself more
        IamClient(seaweedfs.url, mine["accessKey"], mine["secretKey"]).create_user("escalated")
    seldon = held(api, namespace, "lathe-seldon-storage")
    assert seldon["RCLONE_CONFIG_S3_ACCESS_KEY_ID"] == mine["accessKey"]
    assert seldon["RCLONE_CONFIG_S3_ENDPOINT"] == seaweedfs.url

    # A restarted operator mints nothing: the Secret still holds one of the user's live keys.
    iam = IamClient(seaweedfs.url, seaweedfs.access_key, seaweedfs.secret_key)
    user = store_identity.user_name(namespace)
    restarted = NamespaceAccess(KubeClient(api), iam, store, "lathe-seldon-storage")
    restarted.ensure(namespace)
    assert held(api, namespace) == mine and iam.access_keys(user) == [mine["accessKey"]]

    # An operator killed between the two Secrets: the Seldon one catches up with the store one.
    stale = store_identity.seldon_secret(namespace, "lathe-seldon-storage", user, "a deleted key", "x", store)
    KubeClient(api).apply(stale)  # as an earlier mint wrote it
    assert held(api, namespace, "lathe-seldon-storage")[store_identity.SELDON_KEY] == "a deleted key"
    NamespaceAccess(KubeClient(api), iam, store, "lathe-seldon-storage").ensure(namespace)
    assert held(api, namespace, "lathe-seldon-storage")[store_identity.SELDON_KEY] == mine["accessKey"]
    assert held(api, namespace) == mine and iam.access_keys(user) == [mine["accessKey"]]

    # A deleted Secret brings a new key; the old one no longer opens anything.
    kube_client.CoreV1Api(api).delete_namespaced_secret(SECRET, namespace)
    NamespaceAccess(KubeClient(api), iam, store, "lathe-seldon-storage").ensure(namespace)
    renewed = held(api, namespace)
    assert renewed["accessKey"] != mine["accessKey"] and iam.access_keys(user) == [renewed["accessKey"]]
    assert held(api, namespace, "lathe-seldon-storage")["RCLONE_CONFIG_S3_ACCESS_KEY_ID"] == renewed["accessKey"]
    eventually(lambda: _refused(lambda: scoped.get(layout.model_file(namespace, "m", 1))), timeout=10)
    with pytest.raises(StoreAccessDenied):
        as_namespace(seaweedfs, bucket, renewed).get(theirs)


def _refused(action: Any) -> bool:
    try:
        action()
    except StoreAccessDenied:
        return True
    except Exception:  # noqa: BLE001  (NoSuchKey: the key still works)
        return False
    return False


def test_a_secret_lathe_did_not_write_is_left_alone(
    api: kube_client.ApiClient, namespace: str, seaweedfs: SeaweedServer
) -> None:
    core = kube_client.CoreV1Api(api)
    theirs = {"accessKey": base64.b64encode(b"an administrator's").decode()}
    core.create_namespaced_secret(namespace, {"metadata": {"name": SECRET}, "data": theirs})
    access = store_access(KubeClient(api), settings(seaweedfs, f"iso-{namespace}"), "namespace", seaweedfs.url)
    with pytest.raises(StoreSecretConflict, match=f"Secret {SECRET} in {namespace} was not written by Lathe"):
        access.ensure(namespace)
    assert core.read_namespaced_secret(SECRET, namespace).data == theirs


def test_an_iam_user_lathe_did_not_create_is_not_taken_over(
    api: kube_client.ApiClient, namespace: str, seaweedfs: SeaweedServer
) -> None:
    """A user named as Lathe names the namespace's, made by someone else with other powers, is refused with the
    reason (before: adopted, its keys rewritten and its other policies handed to the namespace). An empty user
    (what an operator killed between creating and tagging leaves) is taken and tagged."""
    iam = IamClient(seaweedfs.url, seaweedfs.access_key, seaweedfs.secret_key)
    user = store_identity.user_name(namespace)
    assert iam.create_user(user)
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]}
    iam.put_user_policy(user, "admin", admin)
    theirs = iam.create_access_key(user)[0]
    access = store_access(KubeClient(api), settings(seaweedfs, f"iso-{namespace}"), "namespace", seaweedfs.url)
    with pytest.raises(StoreIdentityConflict, match=f"IAM user {user} exists without the tag"):
        access.ensure(namespace)
    assert iam.user_policies(user) == ["admin"] and iam.all_access_keys(user) == [theirs]  # left as it was
    iam.delete_access_key(user, theirs)
    iam.call("DeleteUserPolicy", UserName=user, PolicyName="admin")
    access.ensure(namespace)  # empty now: taken, tagged, given Lathe's policy and a key
    assert iam.user_tags(user) == store_identity.USER_TAGS and iam.user_policies(user) == [store_identity.POLICY]
    assert held(api, namespace)["accessKey"] in iam.access_keys(user)
    iam.call("UntagUser", UserName=user, **{"TagKeys.member.1": store_identity.OWNER_TAG})
    restarted = store_access(KubeClient(api), settings(seaweedfs, f"iso-{namespace}"), "namespace", seaweedfs.url)
    restarted.ensure(namespace)  # made by an earlier Lathe, before users were tagged: its Secret proves it
    assert iam.user_tags(user) == store_identity.USER_TAGS


PROBE = """
import json
from lathe_core.stores import open_configured_store
from lathe_core.store import StoreAccessDenied
store, found = open_configured_store(), {}
def attempt(name, action):
    try:
        result = action()
        found[name] = "allowed" if not isinstance(result, bytes) else result.decode()[:40]
    except StoreAccessDenied:
        found[name] = "denied"
attempt("read own", lambda: store.get(OWN))
attempt("read theirs", lambda: store.get(THEIRS))
attempt("overwrite theirs", lambda: store.put(THEIRS, b"{}"))
attempt("delete theirs", lambda: store.delete(THEIRS))
attempt("list theirs", lambda: store.list(THEIRS_PREFIX))
print("PROBE " + json.dumps(found))
"""


@pytest.mark.timeout(900)
def test_a_job_in_one_namespace_cannot_read_or_overwrite_anothers_data(
    api: kube_client.ApiClient,
    kubectl: Kubectl,
    control_plane: ControlPlane,
    node: Node,
    namespace: str,
    other: str,
    seaweedfs: SeaweedServer,
    tmp_path: Path,
) -> None:
    bucket = f"iso-{namespace}"
    jobs = node.load(images("build-images.sh", "jobs")["jobs"])
    raw = Minio(seaweedfs.endpoint, seaweedfs.access_key, seaweedfs.secret_key, secure=False, region="us-east-1")
    raw.make_bucket(f"raw-{namespace}")
    data = digits().to_csv(index=False).encode()
    raw.put_object(f"raw-{namespace}", "digits/digits.csv", io.BytesIO(data), len(data))
    source = _source_reader(seaweedfs, f"raw-{namespace}")  # read-only keys to the raw bucket, opted in
    for name in (namespace, other):
        kubectl.run(
            "create", "secret", "generic", "store-creds", "-n", name,
            f"--from-literal=accessKey={source[0]}", f"--from-literal=secretKey={source[1]}",
        )  # fmt: skip
        kubectl.run("label", "secret", "store-creds", "-n", name, "lathe.dev/credentials=true")
    env = {
        "LATHE_EXECUTOR": "job",
        "LATHE_JOBS_IMAGE": jobs,
        "LATHE_STORE_URI": f"s3://{bucket}",
        "LATHE_STORE_ENDPOINT": seaweedfs.endpoint,
        "LATHE_STORE_ACCESS_KEY": seaweedfs.access_key,
        "LATHE_STORE_SECRET_KEY": seaweedfs.secret_key,
        "LATHE_STORE_SECRET": SECRET,
        "LATHE_STORE_ISOLATION": "namespace",
        "LATHE_PIPELINE_BACKEND": "job",
    }
    operator = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env, also=(other,))
    try:
        for name in (namespace, other):
            kubectl.run("apply", "-n", name, "-f", "-", stdin=dataset(f"raw-{namespace}"))
        for name in (namespace, other):  # each ingest Job publishes with its own namespace's keys
            eventually(lambda name=name: _published(kubectl, name), timeout=300)
        assert held(api, namespace)["accessKey"] != held(api, other)["accessKey"]
        assert held(api, namespace)["accessKey"] != seaweedfs.access_key
    finally:
        operator.kill(signal.SIGTERM)
    admin = S3Store(seaweedfs.endpoint, seaweedfs.access_key, seaweedfs.secret_key, bucket, region="us-east-1")
    [own] = [k for k in admin.list(f"datasets/{namespace}/digits/") if k.endswith(layout.MANIFEST)]
    [theirs] = [k for k in admin.list(f"datasets/{other}/digits/") if k.endswith(layout.MANIFEST)]
    before = admin.get(theirs)

    probe = PROBE.replace("THEIRS_PREFIX", repr(f"datasets/{other}/")).replace("THEIRS", repr(theirs))
    found = _run_pod(kubectl, namespace, jobs, probe.replace("OWN", repr(own)), bucket, seaweedfs)
    assert found.pop("read own") == admin.get(own).decode()[:40]
    assert found == {
        "read theirs": "denied",
        "overwrite theirs": "denied",
        "delete theirs": "denied",
        "list theirs": "denied",
    }
    assert admin.get(theirs) == before


def _published(kubectl: Kubectl, namespace: str) -> bool:
    assert ready(kubectl, namespace) == ("True", "Published"), status(kubectl, namespace)
    return True


def _source_reader(weed: SeaweedServer, bucket: str) -> tuple[str, str]:
    iam = IamClient(weed.url, weed.access_key, weed.secret_key)
    user = f"reader-{bucket}"
    iam.create_user(user)
    read = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]}
    where = {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [f"arn:aws:s3:::{bucket}"]}
    iam.put_user_policy(user, "read", {"Version": "2012-10-17", "Statement": [read, where]})
    return iam.create_access_key(user)


def _run_pod(kubectl: Kubectl, namespace: str, image: str, script: str, bucket: str, weed: SeaweedServer) -> Any:
    keys = [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}
        for key, variable in (("accessKey", "LATHE_STORE_ACCESS_KEY"), ("secretKey", "LATHE_STORE_SECRET_KEY"))
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", script],
                    "env": [
                        {"name": "LATHE_STORE_URI", "value": f"s3://{bucket}"},
                        {"name": "LATHE_STORE_ENDPOINT", "value": weed.endpoint},
                        *keys,
                    ],
                }
            ],
        },
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(pod))

    def finished() -> str:
        phase = kubectl.get("pod", "probe", "-n", namespace)["status"].get("phase")
        assert phase in ("Succeeded", "Failed"), phase
        return str(phase)

    phase = eventually(finished, timeout=180)
    logs = kubectl.run("logs", "probe", "-n", namespace).stdout
    assert phase == "Succeeded", logs
    return json.loads(logs.split("PROBE ", 1)[1])

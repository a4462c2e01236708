"""A namespace's store identity: the request signature, the policy's reach, the names, the settings."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

import pytest

from lathe_core import layout
from lathe_operator.backends import store_identity as identity
from lathe_operator.backends.store_iam import authorization
from lathe_operator.config import Config

EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # AWS's documented example keys


def test_the_signature_matches_aws_published_examples() -> None:
    # AWS's Signature Version 4 test suite, get-vanilla-query-order-key-case
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    signed = authorization(
        "GET", "/", "Param2=value2&Param1=value1", headers, b"",
        access_key="AKIDEXAMPLE", secret_key=EXAMPLE_SECRET, region="us-east-1", service="service",
    )  # fmt: skip
    assert signed.endswith("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    assert "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date" in signed
    # AWS's signed IAM request example: POST ListUsers
    headers = {
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "host": "iam.amazonaws.com",
        "x-amz-date": "20110909T233600Z",
    }
    signed = authorization(
        "POST", "/", "", headers, b"Action=ListUsers&Version=2010-05-08",
        access_key="AKIDEXAMPLE", secret_key=EXAMPLE_SECRET, region="us-east-1", service="iam",
    )  # fmt: skip
    assert signed.endswith("Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c")


def _every_key(namespace: str) -> list[str]:
    """One key from each of layout's key functions, their arguments filled in by name."""
    values: dict[str, Any] = {
        "namespace": namespace, "name": "obj", "model": "obj", "deployment": "obj", "monitor": "obj", "run": "r1",
        "version": 1, "index": 0, "when": datetime(2026, 1, 1, tzinfo=UTC), "file": "x",
    }  # fmt: skip
    keys = []
    for name, function in inspect.getmembers(layout, inspect.isfunction):
        parameters = inspect.signature(function).parameters
        if function.__module__ != layout.__name__ or "key" in parameters or name == "namespace_prefixes":
            continue
        if name == "dataset_file":
            keys.append(function(namespace, "obj", "sha256:" + "a" * 64, "x"))
        elif name == "log_object":
            keys.append(function(layout.log_partition(namespace, "obj", values["when"]), 1, 2, 3))
        elif name == "progress_of":
            keys.append(function(layout.training_report(namespace, "obj", "r1")))
        else:
            keys.append(function(**{p: values[p] for p in parameters}))
    return keys


def test_the_policy_reaches_every_key_of_its_namespace_and_none_of_anothers() -> None:
    keys = _every_key("team-a")
    assert len(keys) >= 20
    statement, listing = identity.policy("lathe", "team-a")["Statement"]
    allowed = [r.removeprefix("arn:aws:s3:::lathe/").removesuffix("*") for r in statement["Resource"]]
    assert all(any(k.startswith(p) for p in allowed) for k in keys), keys
    assert not any(k.startswith(p) for k in _every_key("team-b") for p in allowed)
    assert not any(k.startswith(p) for k in _every_key("team-ab") for p in allowed)  # a prefix of a name is not it
    assert listing["Resource"] == ["arn:aws:s3:::lathe"] and listing["Action"] == ["s3:ListBucket"]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [f"{p}*" for p in allowed]
    assert "s3:*" not in statement["Action"] and all(a.startswith("s3:") for a in statement["Action"])


def test_user_names_fit_iam_and_stay_distinct() -> None:
    assert identity.user_name("team-a") == "lathe-team-a"
    long_a, long_b = "a" * 63, "a" * 62 + "b"
    assert len(identity.user_name(long_a)) <= 64 and identity.user_name(long_a) != identity.user_name(long_b)
    # a short namespace spelled like a long one's shortened name does not get its user
    hashed = identity.user_name(long_a)
    spelled = hashed.removeprefix("lathe--")  # a valid namespace name of 57 characters
    assert hashed.startswith("lathe--") and identity.user_name(spelled) == f"lathe-{spelled}" != hashed


def test_only_secrets_lathe_wrote_are_replaced() -> None:
    secret = identity.store_secret("ns", "lathe-store-scoped", "lathe-ns", "AK", "SK")
    assert identity.lathes(secret["metadata"]) and not identity.lathes({"name": "x"}) and not identity.lathes(None)
    assert secret["data"] == {"accessKey": "QUs=", "secretKey": "U0s="}


def test_isolation_needs_run_jobs_and_an_s3_store() -> None:
    s3 = {"LATHE_STORE_URI": "s3://lathe", "LATHE_STORE_ENDPOINT": "seaweedfs.store.svc:8333"}
    with pytest.raises(ValueError, match="needs LATHE_PIPELINE_BACKEND=job"):  # the default backend is kfp
        Config.from_env({**s3, "LATHE_STORE_ISOLATION": "namespace"})
    s3 = {**s3, "LATHE_PIPELINE_BACKEND": "job"}
    config = Config.from_env({**s3, "LATHE_STORE_ISOLATION": "namespace"})
    assert config.store_iam_region == "us-east-1"  # AWS IAM's, whatever the bucket's region
    assert config.store_isolation == "namespace" and config.store_iam_endpoint == "http://seaweedfs.store.svc:8333"
    assert config.store.env(keys=False)["LATHE_STORE_REGION"] == "us-east-1"
    given = Config.from_env({**s3, "LATHE_STORE_ISOLATION": "namespace", "LATHE_STORE_IAM_ENDPOINT": "https://iam.x"})
    assert given.store_iam_endpoint == "https://iam.x"
    with pytest.raises(ValueError, match="needs LATHE_EXECUTOR=job"):
        Config.from_env({**s3, "LATHE_STORE_ISOLATION": "namespace", "LATHE_EXECUTOR": "local"})
    with pytest.raises(ValueError, match="needs LATHE_PIPELINE_BACKEND=job"):  # KFP steps run in KFP's namespace
        Config.from_env(
            {**s3, "LATHE_STORE_ISOLATION": "namespace", "LATHE_PIPELINE_BACKEND": "job", "LATHE_KFP_HOST": "x"}
        )
    with pytest.raises(ValueError, match="other than local"):
        Config.from_env(
            {**s3, "LATHE_STORE_ISOLATION": "namespace", "LATHE_PIPELINE_BACKEND": "job", "LATHE_SERVING": "local"}
        )
    with pytest.raises(ValueError, match="shared or namespace"):
        Config.from_env({**s3, "LATHE_STORE_ISOLATION": "tenant"})
    assert Config.from_env(s3).store_isolation == "shared"

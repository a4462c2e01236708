"""The AWS IAM API, query protocol, signed with Signature Version 4: users, access keys, inline policies.

AWS IAM, SeaweedFS's S3 gateway (IAM on its S3 port) and Ceph RGW speak it. Lathe needs six
calls to give each namespace a store identity of its own (``backends.store_access``); the
signature is computed here from the AWS specification rather than pulling in boto3 for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import urllib3

from lathe_core.store import StoreAccessDenied, StoreError, StoreUnavailable

VERSION = "2010-05-08"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
DENIED = {"AccessDenied", "InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId"}
BUSY = {"Throttling", "ServiceUnavailable", "RequestLimitExceeded"}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def authorization(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
) -> str:
    """The ``Authorization`` header of a request whose ``headers`` include ``host`` and ``x-amz-date``
    (every header given is signed)."""
    amz_date = headers["x-amz-date"]
    canonical_headers = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    signed = ";".join(sorted(canonical_headers))
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path or "/", safe="/-_.~"),
            canonical_query,
            "".join(f"{k}:{canonical_headers[k]}\n" for k in sorted(canonical_headers)),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(f"AWS4{secret_key}".encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


class IamError(StoreError):
    """A refusal of the IAM API (its code: EntityAlreadyExists, NoSuchEntity, LimitExceeded...)."""

    reason = "StoreIdentityFailed"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"IAM {code}: {message}")
        self.code = code


class IamClient:
    """``endpoint``: ``https://iam.amazonaws.com``, or an S3 gateway's URL that serves IAM on its port."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
        self.endpoint, self.region = endpoint.rstrip("/"), region
        self.access_key, self.secret_key = access_key, secret_key
        self.http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3, read=30), retries=urllib3.Retry(total=2, backoff_factor=0.2)
        )

    def call(self, action: str, **params: str) -> ET.Element:
        """One action; its result element (namespaces stripped). IamError for the API's refusals."""
        body = urllib.parse.urlencode({"Action": action, "Version": VERSION, **params}).encode()
        url = urllib.parse.urlsplit(self.endpoint)
        headers = {
            "content-type": FORM,
            "host": url.netloc,
            "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        }
        headers["authorization"] = authorization(
            "POST",
            url.path or "/",
            "",
            headers,
            body,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            service="iam",
        )
        try:
            response = self.http.request("POST", self.endpoint + "/", body=body, headers=headers)
        except urllib3.exceptions.HTTPError as error:
            raise StoreUnavailable(f"IAM at {self.endpoint} unreachable: {error}") from error
        try:
            root = _strip(ET.fromstring(response.data or b"<Empty/>"))
        except ET.ParseError as error:  # a proxy's error page, or not an IAM API at all
            raise StoreUnavailable(f"IAM at {self.endpoint} answered {response.status} without XML: {error}") from error
        if response.status >= 400:
            code = root.findtext(".//Code") or str(response.status)
            message = root.findtext(".//Message") or ""
            if code in DENIED:
                raise StoreAccessDenied(f"IAM at {self.endpoint}: {code}: {message}")
            if response.status >= 500 or code in BUSY:
                raise StoreUnavailable(f"IAM at {self.endpoint}: {code}: {message}")
            raise IamError(code, message)
        return root

    def create_user(self, user: str, tags: dict[str, str] | None = None) -> bool:
        """False when the user exists already (its tags are then left as they are)."""
        try:
            self.call("CreateUser", UserName=user, **_tags(tags or {}))
        except IamError as error:
            if error.code == "EntityAlreadyExists":
                return False
            raise
        return True

    def tag_user(self, user: str, tags: dict[str, str]) -> None:
        self.call("TagUser", UserName=user, **_tags(tags))

    def user_tags(self, user: str) -> dict[str, str]:
        found = self.call("ListUserTags", UserName=user).iter("member")
        return {m.findtext("Key") or "": m.findtext("Value") or "" for m in found}

    def user_policies(self, user: str) -> list[str]:
        """Inline policy names, then attached managed policies' ARNs: everything that gives the user power."""
        inline = [e.text or "" for e in self.call("ListUserPolicies", UserName=user).iter("member")]
        attached = self.call("ListAttachedUserPolicies", UserName=user).iter("PolicyArn")
        return inline + [e.text or "" for e in attached]

    def put_user_policy(self, user: str, name: str, document: dict[str, Any]) -> None:
        self.call("PutUserPolicy", UserName=user, PolicyName=name, PolicyDocument=json.dumps(document))

    def access_keys(self, user: str) -> list[str]:
        """The user's active keys (an inactive one opens nothing)."""
        found = self.call("ListAccessKeys", UserName=user).iter("member")
        return [m.findtext("AccessKeyId") or "" for m in found if (m.findtext("Status") or "Active") == "Active"]

    def all_access_keys(self, user: str) -> list[str]:
        return [e.text or "" for e in self.call("ListAccessKeys", UserName=user).iter("AccessKeyId")]

    def create_access_key(self, user: str) -> tuple[str, str]:
        found = self.call("CreateAccessKey", UserName=user)
        return found.findtext(".//AccessKeyId") or "", found.findtext(".//SecretAccessKey") or ""

    def delete_access_key(self, user: str, key: str) -> None:
        self.call("DeleteAccessKey", UserName=user, AccessKeyId=key)


def _tags(tags: dict[str, str]) -> dict[str, str]:
    """AWS's query form of a tag list: Tags.member.N.Key / .Value."""
    form = {}
    for n, (key, value) in enumerate(sorted(tags.items()), start=1):
        form[f"Tags.member.{n}.Key"], form[f"Tags.member.{n}.Value"] = key, value
    return form


def _strip(element: ET.Element) -> ET.Element:
    """Drop XML namespaces, so ``findtext('.//Code')`` works for AWS's and other servers' answers alike."""
    for node in element.iter():
        node.tag = node.tag.rsplit("}", 1)[-1]
    return element

"""Where Lathe keeps its objects, read from and written to the environment in this one place.

The operator reads ``LATHE_STORE_*``; every process it starts (a Job, a pipeline step,
a local run, a model server) gets the same variables back from ``env`` or, in a
cluster, the keys from the store Secret (``SECRET_KEYS``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

URI, ENDPOINT, SECURE, REGION = "LATHE_STORE_URI", "LATHE_STORE_ENDPOINT", "LATHE_STORE_SECURE", "LATHE_STORE_REGION"
ACCESS_KEY, SECRET_KEY, SECRET = "LATHE_STORE_ACCESS_KEY", "LATHE_STORE_SECRET_KEY", "LATHE_STORE_SECRET"
SECRET_KEYS = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}  # key in the store Secret -> variable


@dataclass(frozen=True)
class StoreSettings:
    """An S3 bucket or a local directory, and the credentials to reach it."""

    uri: str = "s3://lathe"  # s3://<bucket> or file:///<directory>
    endpoint: str = "minio.lathe-system.svc:9000"
    secure: bool = False
    # Given, not asked of the store: an identity confined to its namespace's prefixes may not ask
    # for the bucket's location. MinIO's, S3Proxy's and SeaweedFS's default; on AWS, the bucket's.
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    secret_name: str = "lathe-store"  # Secret in each workload namespace that Jobs read credentials from

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").split("/")[0]

    @property
    def local(self) -> bool:
        return self.uri.startswith("file://")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoreSettings:
        env = os.environ if env is None else env
        return cls(
            uri=env.get(URI, cls.uri),
            endpoint=env.get(ENDPOINT, cls.endpoint),
            secure=env.get(SECURE, "false").lower() == "true",
            region=env.get(REGION) or cls.region,
            access_key=env.get(ACCESS_KEY, ""),
            secret_key=env.get(SECRET_KEY, ""),
            secret_name=env.get(SECRET, cls.secret_name),
        )

    def env(self, *, keys: bool = True) -> dict[str, str]:
        """The variables that point a child process here; without ``keys`` where a Secret supplies them."""
        found = {URI: self.uri, ENDPOINT: self.endpoint, SECURE: str(self.secure).lower(), REGION: self.region}
        if keys:
            found.update({ACCESS_KEY: self.access_key, SECRET_KEY: self.secret_key})
        return found

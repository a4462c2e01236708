"""SeaweedFS (Apache-2.0): a real S3 server that enforces per-identity policies and speaks AWS IAM.

The store for store-isolation tests: S3Proxy has one identity, so only a server with users and
policies can show that a namespace's keys reach its own prefixes and nothing else. One ``weed
server`` process runs the master, a volume server, the filer and the S3 gateway (with IAM on
the same port). The administrator identity comes from ``-s3.config``; users made through IAM
live in the filer.
"""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import S3Error

from tests.conftest import ROOT

from .process import Process, free_port


def _writes(client: Minio) -> bool:
    try:
        if not client.bucket_exists("ready"):
            client.make_bucket("ready")
        client.put_object("ready", "probe", io.BytesIO(b"1"), 1)
    except (S3Error, urllib3.exceptions.HTTPError):
        return False
    return True


def weed() -> Path:
    """The cached binary; hack/build-seaweedfs.sh (make tools) builds it when missing."""
    built = subprocess.run(["bash", str(ROOT / "hack/build-seaweedfs.sh")], check=True, capture_output=True, text=True)
    return Path(built.stdout.strip())


@dataclass
class SeaweedServer:
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lathe-seaweedfs-")))
    access_key: str = "lathe-admin"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    host: str = "127.0.0.1"  # the test node's address, for a server its pods reach
    endpoint: str = ""
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def start(self) -> SeaweedServer:
        (self.work / "data").mkdir(parents=True, exist_ok=True)
        config = self.work / "s3.json"
        admin = {"accessKey": self.access_key, "secretKey": self.secret_key}
        config.write_text(json.dumps({"identities": [{"name": "admin", "credentials": [admin], "actions": ["Admin"]}]}))
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        argv = [str(weed()), "server", f"-dir={self.work / 'data'}", f"-ip={self.host}", f"-ip.bind={self.host}"]
        for name, port in ports.items():
            argv += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
        argv += [
            "-s3",
            f"-s3.config={config}",
            "-s3.iam.readOnly=false",
            "-volume.max=400",  # each bucket is a collection with volumes of its own; files grow as written
            "-master.volumeSizeLimitMB=64",
        ]
        self.endpoint = f"{self.host}:{ports['s3']}"
        self.process = Process("seaweedfs", argv, self.work)

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"{self.url}/", timeout=2)
            except urllib.error.HTTPError:
                return True  # 403 to an anonymous request: the gateway is serving S3
            return True

        self.process.wait_until(answers, timeout=120)
        # Serving is not writing: the filer's lock ring and the first volumes come a few seconds later.
        client = Minio(self.endpoint, self.access_key, self.secret_key, secure=False, region="us-east-1")
        self.process.wait_until(lambda: _writes(client), timeout=120)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

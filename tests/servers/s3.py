"""S3Proxy (Apache-2.0) with its filesystem backend: a real S3 server on loopback.

Lathe talks to it with the ``minio`` client exactly as it talks to MinIO in a cluster.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .process import Process, binary, free_port

S3PROXY_VERSION = os.environ.get("S3PROXY_VERSION", "4.1.0")


@dataclass
class S3Server:
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lathe-s3-")))
    access_key: str = "lathe"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    endpoint: str = ""
    process: Process | None = None
    host: str = "127.0.0.1"  # the test node's address, for a server its pods reach

    def secret(self, name: str, labels: dict[str, str] | None = None) -> str:
        """A Secret (YAML) with this server's keys as ``accessKey`` and ``secretKey``: the store's (``lathe-store``)
        or a Dataset source's (``store-creds``, opted in with the ``lathe.dev/credentials`` label)."""
        data = {"accessKey": self.access_key, "secretKey": self.secret_key}
        body = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        metadata = {"name": name, **({"labels": labels} if labels else {})}
        return yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": body})

    def start(self) -> S3Server:
        """Start, on the port of the last start when there was one (a restart keeps its endpoint and data)."""
        port = int(self.endpoint.rsplit(":", 1)[1]) if self.endpoint else free_port()
        self.endpoint = f"{self.host}:{port}"
        (self.work / "data").mkdir(parents=True, exist_ok=True)
        conf = self.work / "s3proxy.conf"
        conf.write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint=http://{self.endpoint}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={self.access_key}",
                    f"s3proxy.credential={self.secret_key}",
                    "jclouds.provider=filesystem",
                    f"jclouds.filesystem.basedir={self.work / 'data'}",
                ]
            )
        )
        jar = binary(f"s3proxy-{S3PROXY_VERSION}/s3proxy.jar")
        self.process = Process(
            "s3proxy",
            ["java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-jar", str(jar), "--properties", str(conf)],
            self.work,
        )

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"http://{self.endpoint}/", timeout=2)
            except urllib.error.HTTPError:
                return True  # 403 to an anonymous request: it is serving S3
            return True

        self.process.wait_until(answers, timeout=60)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

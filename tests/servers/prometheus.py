"""Prometheus from Debian's package, scraping the targets a test hands it."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .process import Process, free_port


@dataclass
class Prometheus:
    targets: list[str] = field(default_factory=list)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lathe-prom-")))
    url: str = ""
    process: Process | None = None
    scrape_interval: str = "1s"
    file_sd: list[str] = field(default_factory=list)  # target files, e.g. the operator's prometheus-targets.json

    def _config(self) -> dict[str, Any]:
        jobs: list[dict[str, Any]] = [{"job_name": "lathe", "static_configs": [{"targets": self.targets}]}]
        if self.file_sd:
            jobs.append(
                {"job_name": "lathe-serving", "file_sd_configs": [{"files": self.file_sd, "refresh_interval": "5s"}]}
            )
        return {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": jobs,
        }

    def start(self) -> Prometheus:
        executable = shutil.which("prometheus")
        if executable is None:
            raise FileNotFoundError("prometheus is missing: run `make tools` (hack/setup.sh) first")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = self.work / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        self.process = Process(
            "prometheus",
            [
                executable,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            self.work,
        )
        self.process.wait_until(lambda: urllib.request.urlopen(f"{self.url}/-/ready", timeout=2).status == 200, 30)
        return self

    def scrape(self, targets: list[str]) -> None:
        """Replace the scrape targets and reload."""
        self.targets = targets
        (self.work / "prometheus.yml").write_text(yaml.safe_dump(self._config()))
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/reload", method="POST"), timeout=5)

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        return list(body["data"]["result"])

    def stop(self) -> None:
        if self.process:
            self.process.stop()

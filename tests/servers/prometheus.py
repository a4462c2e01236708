"""Prometheus from Debian's package, scraping the targets a test hands it."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
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
    host: str = "127.0.0.1"  # the node's address for an operator in a pod
    pods: Path | None = None  # a kubeconfig: discover model server pods as the chart's PodMonitor selects them
    discovery: PodDiscovery | None = None

    def _config(self) -> dict[str, Any]:
        jobs: list[dict[str, Any]] = [{"job_name": "lathe", "static_configs": [{"targets": self.targets}]}]
        if self.file_sd:
            jobs.append(
                {"job_name": "lathe-serving", "file_sd_configs": [{"files": self.file_sd, "refresh_interval": "5s"}]}
            )
        if self.discovery is not None:
            jobs.append(
                {
                    "job_name": "lathe-model-servers",
                    "honor_labels": True,  # the server's own namespace/deployment/version labels stand
                    "file_sd_configs": [{"files": [str(self.discovery.path)], "refresh_interval": "1s"}],
                }
            )
        return {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": jobs,
        }

    def start(self) -> Prometheus:
        executable = shutil.which("prometheus")
        if executable is None:
            raise FileNotFoundError("prometheus is missing: run `make tools` (hack/setup.sh) first")
        if self.pods is not None:
            self.discovery = PodDiscovery(self.pods, self.work / "pods.json")
            self.discovery.start()
        port = int(self.url.rsplit(":", 1)[1]) if self.url else free_port()  # a restart keeps its port and data
        self.url = f"http://{self.host}:{port}"
        config = self.work / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        self.process = Process(
            "prometheus",
            [
                executable,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address={self.host}:{port}",
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
        if self.discovery:
            self.discovery.stopped.set()
        if self.process:
            self.process.stop()


class PodDiscovery(threading.Thread):
    """Model server pods as the chart's PodMonitor (charts/lathe/templates/podmonitor.yaml) selects
    them, written as a file_sd target file every second: Debian's Prometheus is built without
    kubernetes_sd. Pods labelled as Lathe's model servers, the container named server or model,
    its port named http; the pod's namespace and name as target labels."""

    SELECTOR = "app.kubernetes.io/managed-by=lathe,app.kubernetes.io/component=serving"

    def __init__(self, kubeconfig: Path, path: Path) -> None:
        super().__init__(daemon=True)
        from kubernetes import client, config

        self.api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        self.path, self.stopped = path, threading.Event()
        self.write()

    def targets(self) -> list[dict[str, Any]]:
        found = []
        for pod in self.api.list_pod_for_all_namespaces(label_selector=self.SELECTOR).items:
            if pod.status.phase != "Running" or not pod.status.pod_ip:
                continue
            for container in pod.spec.containers:
                for port in container.ports or []:
                    if container.name in ("server", "model") and port.name == "http":
                        labels = {"namespace": pod.metadata.namespace, "pod": pod.metadata.name}
                        found.append({"targets": [f"{pod.status.pod_ip}:{port.container_port}"], "labels": labels})
        return found

    def write(self) -> None:
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.targets()))
        partial.replace(self.path)  # file_sd reads whole files only

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                self.write()
            except Exception:  # the API restarting: the next round writes again
                continue

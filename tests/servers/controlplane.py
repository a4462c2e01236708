"""etcd + kube-apiserver (Node and RBAC authorizers, client certificates) + kube-controller-manager on loopback.

``tests.servers.node.Node`` adds a real node (kubelet, containerd) to it."""

from __future__ import annotations

import os
import ssl
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .certs import make_pki
from .process import Process, binary, free_port, node_address

K8S_VERSION = os.environ.get("K8S_VERSION", "v1.34.4")
ETCD_VERSION = os.environ.get("ETCD_VERSION", "v3.6.16")
ADMIN = "lathe-admin"
NODE = "system:node:lathe-node"  # the one node's identity (Node authorizer: group system:nodes)
SERVICES = "198.19.0.0/24"  # inside 198.18.0.0/15, reserved for benchmarking: no real network uses it


def kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lathe-test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "lathe-test", "context": {"cluster": "lathe-test", "user": user}}],
        "current-context": "lathe-test",
    }


@dataclass
class ControlPlane:
    """Start with ``start()``; ``kubeconfig`` is an admin (system:masters) config for tests."""

    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lathe-kube-")))
    processes: list[Process] = field(default_factory=list)
    server: str = ""
    kubeconfig: Path = Path()
    pki: dict[str, Path] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return binary(f"kubernetes-{K8S_VERSION}")

    @property
    def kubectl(self) -> Path:
        return self.bin / "kubectl"

    def start(self) -> ControlPlane:
        # Pods reach the API through the kubernetes Service: it advertises the host's address.
        try:
            host = node_address()
        except RuntimeError:
            host = "127.0.0.1"  # no node can run here; everything else still does
        clients = {ADMIN: "system:masters", NODE: "system:nodes"}
        pki = self.pki = make_pki(self.work / "pki", clients, addresses=(host, SERVICES.rsplit(".", 1)[0] + ".1"))
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = Process(
            "etcd",
            [
                str(binary(f"etcd-{ETCD_VERSION}/etcd")),
                f"--data-dir={self.work / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            self.work,
        )
        self.processes.append(etcd)
        self.server = f"https://127.0.0.1:{api_port}"
        apiserver = Process(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=0.0.0.0",
                f"--advertise-address={host}",
                f"--secure-port={api_port}",
                f"--cert-dir={self.work / 'certs'}",
                f"--tls-cert-file={pki['apiserver.crt']}",
                f"--tls-private-key-file={pki['apiserver.key']}",
                f"--client-ca-file={pki['ca.crt']}",
                "--authorization-mode=Node,RBAC",
                # Owner references that block deletion need update on the owner's finalizers, as on
                # OpenShift: the chart's RBAC is tested with it.
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
                f"--kubelet-client-certificate={pki[f'{ADMIN}.crt']}",  # logs and exec through the kubelet
                f"--kubelet-client-key={pki[f'{ADMIN}.key']}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-account-key-file={pki['sa.pub']}",
                f"--service-account-signing-key-file={pki['sa.key']}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-cluster-ip-range={SERVICES}",
                "--allow-privileged=true",
                "--v=0",
            ],
            self.work,
        )
        self.processes.append(apiserver)
        self.kubeconfig = self.work / "kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(kubeconfig(self.server, pki["ca.crt"], pki[f"{ADMIN}.crt"], pki[f"{ADMIN}.key"], ADMIN))
        )
        apiserver.wait_until(self._ready, timeout=60)
        # The controller manager runs as the admin user: a test cluster needs no separate identity.
        # node-lifecycle lifts a new node's not-ready taint; endpointslice gives Services their pods;
        # deployment and replicaset run the model server Deployments of LATHE_SERVING=kubernetes;
        # root-ca-certificate-publisher gives pods the CA of their ServiceAccount token.
        self.processes.append(
            Process(
                "kube-controller-manager",
                [
                    str(self.bin / "kube-controller-manager"),
                    f"--kubeconfig={self.kubeconfig}",
                    "--controllers=garbage-collector-controller,namespace-controller,job-controller,"
                    "serviceaccount-controller,node-lifecycle-controller,endpointslice-controller,"
                    "deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller",
                    "--leader-elect=false",
                    "--secure-port=0",
                    f"--service-account-private-key-file={pki['sa.key']}",
                    f"--root-ca-file={pki['ca.crt']}",
                    "--use-service-account-credentials=false",
                ],
                self.work,
            )
        )
        return self

    def _ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.pki["ca.crt"]))
        context.load_cert_chain(str(self.pki[f"{ADMIN}.crt"]), str(self.pki[f"{ADMIN}.key"]))
        with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=2) as response:
            return bool(response.status == 200)

    def restart_apiserver(self, down: float) -> None:
        """Stop kube-apiserver, wait ``down`` seconds, start it again on its port (etcd keeps every object)."""
        index = next(i for i, p in enumerate(self.processes) if p.name == "kube-apiserver")
        old = self.processes[index]
        old.stop()
        time.sleep(down)
        self.processes[index] = Process(old.name, [str(a) for a in old.popen.args], self.work)  # type: ignore[union-attr]
        self.processes[index].wait_until(self._ready, timeout=60)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

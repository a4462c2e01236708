"""One real node for the test control plane: containerd + runc + CNI, a kubelet, kube-scheduler, kube-proxy.

Pods scheduled here really run. What this machine needs (measured): containerd's
``restrict_oom_score_adj`` (the sandbox may not lower ``oom_score_adj``), a sandbox image
built here (``hack/node-images.sh``: no registry), and a node address that is not loopback
(the kubelet refuses one, and ``kubectl logs`` goes through it). The pod network is a
bridge on 198.18.0.0/24, inside 198.18.0.0/15 (reserved for benchmarking), so no real
network's addresses are used; tests only talk to this cluster's own pods and Services
(kube-proxy in iptables mode; Service addresses come from the control plane's 198.19.0.0/24).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .controlplane import K8S_VERSION, NODE, ControlPlane, kubeconfig
from .process import Process, binary, node_address

ROOT = Path(__file__).resolve().parents[2]
POD_CIDR = "198.18.0.0/24"
BRIDGE = "lathe0"
HOST_TOOLS = ("containerd", "runc", "ctr", "buildah")


def missing_tools() -> list[str]:
    found = [t for t in HOST_TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    return found + [p for p in ("/usr/lib/cni/bridge", "/usr/lib/cni/host-local") if not Path(p).exists()]


def images(script: str = "node-images.sh", *names: str) -> dict[str, Path]:
    """Images as OCI archives, built once and cached by the hash of their inputs: the node's
    (pause, base) or, with ``build-images.sh``, Lathe's (serving, operator, pipelines)."""
    command = ["bash", str(ROOT / "hack" / script), *names]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {name: Path(path) for name, path in (line.split("=", 1) for line in out.split())}


def reference(archive: Path) -> str:
    """The image an archive holds: lathe.local/<name>:<hash>, as the build scripts tag it."""
    name, _, tag = archive.stem.rpartition("-")
    return f"lathe.local/{name}:{tag}"


@dataclass
class Node:
    """Start with ``start()`` after the control plane; ``stop()`` removes its pods' processes too."""

    plane: ControlPlane
    name: str = NODE.removeprefix("system:node:")
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lathe-node-")))
    processes: list[Process] = field(default_factory=list)
    address: str = ""

    @property
    def socket(self) -> Path:
        return self.work / "containerd.sock"

    def ctr(self, *args: str) -> str:
        return subprocess.run(
            ["ctr", "-a", str(self.socket), "-n", "k8s.io", *args], check=True, capture_output=True, text=True
        ).stdout

    def load(self, archive: Path) -> str:
        """Import an image archive into the node's containerd; returns the image's name."""
        self.ctr("images", "import", str(archive))
        return reference(archive)

    def start(self) -> Node:
        gone = missing_tools()
        if gone:
            raise FileNotFoundError(f"{', '.join(gone)} missing: run `make tools` (hack/setup.sh) first")
        self.address = node_address()
        built = images()
        self._containerd(sandbox=reference(built["pause"]))
        for path in built.values():
            self.load(path)
        kubelet = self._kubelet()
        kubelet.wait_until(self._registered, timeout=120)  # fails at once, with its log, if the kubelet exits
        self.processes.append(
            Process(
                "kube-scheduler",
                [
                    str(binary(f"kubernetes-node-{K8S_VERSION}/kube-scheduler")),
                    f"--kubeconfig={self.plane.kubeconfig}",
                    "--leader-elect=false",
                    "--secure-port=0",
                ],
                self.work,
            )
        )
        self.processes.append(self._proxy())
        return self

    def _proxy(self) -> Process:
        """kube-proxy in iptables mode; the host's conntrack limits are left alone. Its rules go at stop()."""
        settings = self.work / "kube-proxy.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                    "kind": "KubeProxyConfiguration",
                    "clientConnection": {"kubeconfig": str(self.plane.kubeconfig)},
                    "mode": "iptables",
                    "clusterCIDR": POD_CIDR,
                    "hostnameOverride": self.name,
                    "healthzBindAddress": "",
                    "metricsBindAddress": "",
                    "conntrack": {"maxPerCore": 0, "min": 0},
                }
            )
        )
        return Process("kube-proxy", [str(self._bin("kube-proxy")), f"--config={settings}"], self.work)

    def _bin(self, name: str) -> Path:
        return binary(f"kubernetes-node-{K8S_VERSION}/{name}")

    def _containerd(self, sandbox: str) -> None:
        cni = self.work / "cni"
        cni.mkdir(parents=True, exist_ok=True)
        (cni / "10-lathe.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "lathe",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                    ],
                }
            )
        )
        config = self.work / "containerd.toml"
        config.write_text(
            f"""version = 2
root = "{self.work / "containerd"}"
state = "{self.work / "containerd-state"}"
[grpc]
  address = "{self.socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
"""
        )
        containerd = Process("containerd", ["containerd", f"--config={config}"], self.work)
        self.processes.append(containerd)
        containerd.wait_until(self.socket.exists, timeout=30)

    def _registered(self) -> bool:
        found = subprocess.run(
            [str(self.plane.kubectl), f"--kubeconfig={self.plane.kubeconfig}", "get", "node", self.name],
            capture_output=True,
            check=False,
        )
        return found.returncode == 0

    def _kubelet(self) -> Process:
        pki = self.plane.pki
        node_config = self.work / "kubelet.kubeconfig"
        node_config.write_text(
            yaml.safe_dump(kubeconfig(self.plane.server, pki["ca.crt"], pki[f"{NODE}.crt"], pki[f"{NODE}.key"], NODE))
        )
        settings = self.work / "kubelet.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    "authentication": {
                        "anonymous": {"enabled": False},
                        "webhook": {"enabled": True},
                        "x509": {"clientCAFile": str(pki["ca.crt"])},
                    },
                    "authorization": {"mode": "Webhook"},
                    "cgroupDriver": "cgroupfs",
                    "failCgroupV1": False,
                    "failSwapOn": False,
                    "containerRuntimeEndpoint": f"unix://{self.socket}",
                    "podCIDR": POD_CIDR,
                    "resolvConf": "",
                    "address": self.address,
                    "port": 10250,
                    "readOnlyPort": 0,
                    "healthzPort": 0,
                    "protectKernelDefaults": False,
                    "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
                    "imageGCHighThresholdPercent": 100,
                    "imageGCLowThresholdPercent": 99,
                    "maxPods": 50,
                    "podLogsDir": str(self.work / "pod-logs"),
                    "serializeImagePulls": False,
                }
            )
        )
        kubelet = Process(
            "kubelet",
            [
                str(binary(f"kubernetes-node-{K8S_VERSION}/kubelet")),
                f"--config={settings}",
                f"--kubeconfig={node_config}",
                f"--root-dir={self.work / 'kubelet'}",
                f"--cert-dir={self.work / 'kubelet-pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.address}",
                "--v=1",
            ],
            self.work,
        )
        self.processes.append(kubelet)
        return kubelet

    def stop(self) -> None:
        if self.socket.exists():  # the pods' processes outlive containerd (their shims): end them first
            for task in self.ctr("tasks", "ls", "-q").split():
                subprocess.run(
                    ["ctr", "-a", str(self.socket), "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", task],
                    capture_output=True,
                    check=False,
                )
        for process in reversed(self.processes):
            process.stop()
        subprocess.run(["pkill", "-KILL", "-f", f"containerd-shim.*{self.socket}"], capture_output=True, check=False)
        subprocess.run([str(self._bin("kube-proxy")), "--cleanup"], capture_output=True, check=False)  # its rules
        _drop_kube_chains()  # and the kubelet's
        self.processes.clear()
        for mount in sorted(_mounts_under(self.work), reverse=True):  # pod volumes and the kubelet's
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        if not _mounts_under(self.work):  # containerd's root holds every image unpacked: a GB or two
            shutil.rmtree(self.work, ignore_errors=True)


def _drop_kube_chains() -> None:
    """Remove every KUBE-* iptables chain and the rules that jump to them, table by table."""
    for table in ("filter", "nat", "mangle"):
        listed = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout.splitlines()
        for rule in listed:
            if rule.startswith("-A ") and "-j KUBE-" in rule and not rule.split()[1].startswith("KUBE-"):
                subprocess.run(
                    ["iptables", "-t", table, "-D", *shlex.split(rule)[1:]], capture_output=True, check=False
                )
        chains = [rule.split()[1] for rule in listed if rule.startswith("-N KUBE-")]
        for flag in ("-F", "-X"):
            for chain in chains:
                subprocess.run(["iptables", "-t", table, flag, chain], capture_output=True, check=False)


def _mounts_under(root: Path) -> list[str]:
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [fields[1] for fields in (line.split() for line in lines) if fields[1].startswith(str(root))]

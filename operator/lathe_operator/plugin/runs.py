"""``lathe logs tr|ds NAME``, ``lathe report dm NAME`` and ``lathe wait KIND/NAME --for=ready``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends.processes import runs_dir
from ..config import Config
from .cluster import KINDS, Cluster, PluginError, plural, split_ref
from .registry import Store
from .show import Printer, condition

KFP_NAMESPACE = "kubeflow"
NEXT_STEP = {
    "datasets": "kubectl lathe logs ds {name}",
    "trainingruns": "kubectl lathe logs tr {name}",
    "modeldeployments": "kubectl lathe get md {name}",
    "driftmonitors": "kubectl lathe report dm {name}",
}


def _run_of(obj: dict[str, Any], kind: str) -> str:
    status = obj.get("status") or {}
    run = status.get("runId") if kind == "trainingruns" else (status.get("lastRun") or {}).get("name")
    if not run:
        raise PluginError(f"error: {kind}/{obj['metadata']['name']} has not started a run yet")
    return str(run)


def logs(cluster: Cluster, printer: Printer, kind_word: str, name: str, kfp_namespace: str | None) -> int:
    """The run's logs, wherever it ran: KFP pods, a Job's pod, or a local process's file."""
    kind = plural(kind_word)
    if kind not in ("trainingruns", "datasets"):
        raise PluginError(f"error: logs are kept for trainingruns (tr) and datasets (ds), not {kind}")
    obj = cluster.get(kind, name)
    run, namespace = _run_of(obj, kind), obj["metadata"]["namespace"]
    url = (obj.get("status") or {}).get("runUrl")
    if url:  # Kubeflow Pipelines: the run's pods carry its id (KFP v2)
        where = kfp_namespace or os.environ.get("LATHE_KFP_NAMESPACE") or KFP_NAMESPACE
        pods = cluster.pods(where, f"pipeline/runid={run}")
        if not pods:
            printer.line(f"No pods of pipeline run {run} are left in namespace {where}; the run's page: {url}")
            return 0
        return _print_pods(cluster, printer, where, pods)
    pods = cluster.pods(namespace, f"job-name={run}")
    if pods:
        return _print_pods(cluster, printer, namespace, pods)
    path = runs_dir(Config.from_env()) / f"{namespace}-{run}.log"
    if path.is_file():
        printer.write(path.read_text(errors="replace"))
        return 0
    raise PluginError(
        f"error: no logs found for run {run}: no pod of Job {run} in namespace {namespace}, "
        f"and no local run's log at {path} (local mode: set LATHE_LOCAL_DIR as the operator has it)"
    )


def _print_pods(cluster: Cluster, printer: Printer, namespace: str, pods: list[dict[str, Any]]) -> int:
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = "main" if "main" in containers else containers[0]
        printer.line(printer.paint(f"==> pod/{pod['metadata']['name']} ({container}) <==", "bold"))
        printer.write(cluster.pod_log(namespace, pod["metadata"]["name"], container))
    return 0


def report(cluster: Cluster, printer: Printer, name: str, to: str | None) -> int:
    obj = cluster.get("driftmonitors", name)
    uri = (obj.get("status") or {}).get("reportUri")
    if not uri:
        raise PluginError(f"error: driftmonitors/{name} has no report yet: its first check has not finished")
    if not to:
        printer.line(uri)
        return 0
    store = Store(cluster, obj["metadata"]["namespace"])
    prefix = store.store.uri("")
    if not uri.startswith(prefix):
        raise PluginError(f"error: the report {uri} is not in the configured store {store.where}")
    data = store.read(lambda: store.store.get(uri.removeprefix(prefix)))
    Path(to).write_bytes(data)
    printer.line(f"wrote {to} ({len(data)} bytes) from {uri}")
    return 0


def _failed(obj: dict[str, Any]) -> str | None:
    """Why the object has failed for good at its current generation, else None."""
    status, generation = obj.get("status") or {}, obj["metadata"].get("generation")
    if status.get("phase") != "Failed" or status.get("observedGeneration") != generation:
        return None
    ready = condition(obj)
    return f"{ready['reason']}: {ready['message']}"


def wait(
    cluster: Cluster,
    printer: Printer,
    ref: str,
    condition_name: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Until Ready is True at the current generation; a progress line meanwhile; a failure ends it at once."""
    if condition_name.lower() not in ("ready", "condition=ready"):
        raise PluginError(f"error: --for={condition_name} is not supported: use --for=ready")
    kind, name = split_ref(ref)
    label = f"{KINDS[kind][1]}/{name}"
    start, shown = time.monotonic(), ""
    while True:
        obj = cluster.get(kind, name)
        ready, status = condition(obj), obj.get("status") or {}
        current = status.get("observedGeneration") == obj["metadata"].get("generation")
        if current and ready["status"] == "True":
            _progress(printer, "", shown)
            printer.line(f"{kind[:-1]}.lathe.dev/{name} condition met ({ready['reason']}: {ready['message']})")
            return 0
        why = _failed(obj)
        if why:
            _progress(printer, "", shown)
            hint = NEXT_STEP[kind].format(name=name)
            raise PluginError(f"error: {label} failed: {why}\nnext: `{hint}` for the details")
        elapsed = time.monotonic() - start
        line = f"[{elapsed:4.0f}s] {label}: {status.get('phase') or 'Pending'}: {ready['message'] or ready['reason'] or 'waiting for the operator'}"
        shown = _progress(printer, line, shown)
        if elapsed >= timeout:
            _progress(printer, "", shown)
            raise PluginError(
                f"error: timed out waiting for the condition on {kind}/{name}: {ready['message'] or 'no status yet'}"
            )
        sleep(1.0)


def _progress(printer: Printer, line: str, shown: str) -> str:
    """One line rewritten in place on a terminal; each new text on its own line when piped."""
    if printer.tty:
        printer.out.write("\r\x1b[2K" + line[:200])
        printer.out.flush()
    elif line and line.split("] ", 1)[-1] != shown.split("] ", 1)[-1]:
        printer.line(line)
    return line

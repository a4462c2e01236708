"""``lathe status``: every Lathe object in a namespace, grouped by kind, with the figure that matters for each."""

from __future__ import annotations

from typing import Any

from .cluster import KINDS, Cluster
from .show import Printer, age, as_list, condition, dump, figure, short, table


def _dataset(obj: dict[str, Any]) -> list[str]:
    status = obj.get("status") or {}
    validation = status.get("validation") or {}
    checks = f"{validation.get('successful', 0)}/{validation['evaluated']}" if validation.get("evaluated") else "none"
    return [short(status.get("currentVersion")), str(status.get("rows", "-")), checks]


def key_metric(metrics: dict[str, Any]) -> str:
    """accuracy when there is one, else the first metric by name."""
    if not metrics:
        return "-"
    name = "accuracy" if "accuracy" in metrics else sorted(metrics)[0]
    return f"{name}={metrics[name]:.3f}"


def _training_run(obj: dict[str, Any]) -> list[str]:
    status = obj.get("status") or {}
    model = status.get("model") or {}
    registered = (
        f"{model['name']}:{model['version']}" if model else (obj.get("spec") or {}).get("model", {}).get("name", "-")
    )
    return [registered, short(status.get("datasetVersion")), key_metric(status.get("metrics") or {})]


def canary_text(status: dict[str, Any]) -> str:
    canary = status.get("canary")
    if not canary:
        return "-"
    if canary.get("phase") == "Progressing":
        return f"v{canary['version']} at {canary['percent']}%"
    return f"v{canary['version']} {canary.get('phase')}"


def _model_deployment(obj: dict[str, Any]) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    mode = spec.get("mode", "online")
    if mode == "online":
        split = " ".join(f"v{t['version']}:{t['percent']}%" for t in status.get("traffic") or []) or "-"
    else:
        split = f"{status.get('rowsScored', '-')} rows" if mode == "batch" else status.get("outputUri") or "-"
    return [f"{spec.get('model', {}).get('name', '-')}", mode, split, canary_text(status)]


def _drift_monitor(obj: dict[str, Any]) -> list[str]:
    status = obj.get("status") or {}
    return [
        status.get("verdict") or "-",
        figure(status.get("driftShare"), "{:.0%}"),
        figure(status.get("liveAccuracy")),
        age(status.get("lastCheck")) if status.get("lastCheck") else "-",
    ]


COLUMNS = {
    "datasets": (["VERSION", "ROWS", "CHECKS"], _dataset),
    "trainingruns": (["MODEL", "DATA", "FIGURE"], _training_run),
    "modeldeployments": (["MODEL", "MODE", "TRAFFIC", "CANARY"], _model_deployment),
    "driftmonitors": (["VERDICT", "DRIFTED", "LIVE-ACC", "CHECKED"], _drift_monitor),
}


def status(cluster: Cluster, printer: Printer, output: str | None) -> int:
    found = {kind: cluster.list(kind) for kind in KINDS}
    if output:
        printer.line(dump(as_list([o for objs in found.values() for o in objs]), output))
        return 0
    if not any(found.values()):
        where = "any namespace" if cluster.namespace is None else f"{cluster.namespace} namespace"
        printer.line(f"No Lathe resources found in {where}.")
        return 0
    first = True
    for kind, objects in found.items():
        if not objects:
            continue
        header, columns = COLUMNS[kind]
        rows = []
        for obj in objects:
            ready = condition(obj)
            degraded = condition(obj, "Degraded")["status"] == "True"
            word = ready["status"] or "Unknown"
            shown = printer.ready("Unknown" if degraded and word == "True" else word, word)
            meta = obj["metadata"]
            lead = [meta["namespace"]] if cluster.namespace is None else []
            rows.append(
                lead
                + [meta["name"], shown, ready["reason"] or "-"]
                + columns(obj)
                + [age(meta.get("creationTimestamp"))]
            )
        lead = ["NAMESPACE"] if cluster.namespace is None else []
        if not first:
            printer.line()
        first = False
        printer.line(printer.paint(f"{KINDS[kind][0]}s ({KINDS[kind][1]})", "bold"))
        printer.line(table(lead + ["NAME", "READY", "REASON"] + header + ["AGE"], rows))
    return 0

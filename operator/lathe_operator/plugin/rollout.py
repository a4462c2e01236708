"""``lathe get md NAME [--watch]`` and ``promote|abort|undo md NAME``: a canary as Argo Rollouts' plugin shows a rollout."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..api.v1alpha1 import ModelDeployment
from ..reconcile import canary, manual
from ..reconcile.schedule import seconds
from .cluster import Cluster, PluginError
from .show import Printer, age, condition, dump, figure, table, when

KIND = "modeldeployments"
BAR = 20


def _bar(percent: int) -> str:
    filled = round(BAR * percent / 100)
    return "█" * filled + "·" * (BAR - filled)


def _figures(label: str, seen: dict[str, Any] | None, analysis: dict[str, Any] | None) -> list[list[str]]:
    """Rows: each of a version's figures, against its limit when ``analysis`` gives the limits."""
    seen, limits = seen or {}, analysis or {}
    rows = [
        ("requests", "{:.0f}", f">= {limits.get('minRequests', 200)}"),
        ("errorRate", "{:.2%}", f"<= {limits.get('maxErrorRate', 0.01):.2%}"),
        ("p99Ms", "{:.1f} ms", f"<= {limits['maxP99Ms']:g} ms" if limits.get("maxP99Ms") else "-"),
        ("accuracy", "{:.3f}", f">= {limits['minAccuracy']:g}" if limits.get("minAccuracy") is not None else "-"),
    ]
    return [
        [label if i == 0 else "", name, figure(seen.get(name), pattern), limit if analysis is not None else ""]
        for i, (name, pattern, limit) in enumerate(rows)
    ]


def view(md: dict[str, Any], events: list[dict[str, Any]], printer: Printer, now: datetime | None = None) -> str:
    """The whole picture of one ModelDeployment, as text."""
    now = now or datetime.now(UTC)
    spec, status, meta = md.get("spec") or {}, md.get("status") or {}, md["metadata"]
    ready, progressing = condition(md), condition(md, "Progressing")
    stable = (status.get("stable") or {}).get("version") or spec.get("model", {}).get("version")
    lines = [
        f"Name:          {meta['name']}",
        f"Namespace:     {meta['namespace']}",
        f"Model:         {spec.get('model', {}).get('name')} (stable version {stable})",
        f"Mode:          {spec.get('mode', 'online')}",
        f"Status:        {printer.ready(ready['status'], ready['reason'] or 'Pending')}"
        + (" (progressing)" if progressing["status"] == "True" else ""),
        f"Message:       {ready['message'] or '-'}",
    ]
    if status.get("endpoint"):
        lines.append(f"Endpoint:      {status['endpoint']}")
    if status.get("outputUri"):
        lines.append(f"Output:        {status['outputUri']}")
    traffic = status.get("traffic") or []
    state = status.get("canary") or {}
    if traffic:
        lines += ["", "Traffic:"]
        rows = []
        for split in traffic:
            role = (
                "canary"
                if state and split["version"] == state.get("version") and state.get("phase") == "Progressing"
                else "stable"
            )
            rows.append(
                [str(split["version"]), role, f"{split['percent']}%", printer.paint(_bar(split["percent"]), "blue")]
            )
        if spec.get("shadow"):
            rows.append([str(spec["shadow"]["version"]), "shadow", "copy", ""])
        lines += ["  " + line for line in table(["VERSION", "ROLE", "WEIGHT", ""], rows).splitlines()]
    if state:
        lines += ["", *_canary(md, state, printer, now)]
    history = status.get("history") or []
    if history:
        lines += ["", "History:"]
        rows = [
            [
                age(h.get("time"), now),
                h.get("action", ""),
                str(h.get("version", "")),
                f"{h.get('percent', 0)}%",
                h.get("by") or "analysis",
                (h.get("reason") or "")[:100],
            ]
            for h in history[-10:]
        ]
        lines += [
            "  " + line for line in table(["AGE", "ACTION", "VERSION", "WEIGHT", "BY", "REASON"], rows).splitlines()
        ]
    if events:
        lines += ["", "Events:"]
        rows = [
            [
                e.get("type", ""),
                e.get("reason", ""),
                age(e.get("lastTimestamp") or e.get("eventTime"), now),
                (e.get("message") or "")[:120],
            ]
            for e in events[-8:]
        ]
        lines += ["  " + line for line in table(["TYPE", "REASON", "AGE", "MESSAGE"], rows).splitlines()]
    return "\n".join(lines)


def _canary(md: dict[str, Any], state: dict[str, Any], printer: Printer, now: datetime) -> list[str]:
    spec_canary = (md.get("spec") or {}).get("canary") or {}
    steps = spec_canary.get("steps") or [10, 50, 100]
    analysis = spec_canary.get("analysis") or {}
    window = analysis.get("window", "5m")
    phase = state.get("phase", "")
    colour = {"Progressing": "yellow", "Promoted": "green", "RolledBack": "red"}.get(phase, "bold")
    marks = " → ".join(f"[{s}]" if s == state.get("percent") and phase == "Progressing" else str(s) for s in steps)
    number = next((i + 1 for i, s in enumerate(steps) if s == state.get("percent")), 0)
    since = when(state.get("since"))
    ran = int((now - since).total_seconds()) if since else 0
    lines = [
        f"Canary:        version {state.get('version')} {printer.paint(phase, colour)}"
        + (f", step {number} of {len(steps)} ({state.get('percent')}%)" if phase == "Progressing" else ""),
        f"  Steps:       {marks}",
        f"  Step time:   {ran}s of the {window} window ({seconds(window):.0f}s)"
        if phase == "Progressing"
        else f"  Since:       {age(state.get('since'), now)} ago",
        f"  Baseline:    version {state.get('baseline') or '-'}",
    ]
    measured = state.get("measured")
    if measured:
        lines.append(f"  Analysis:    read {age(measured.get('time'), now)} ago over {window}")
        rows = _figures("candidate", measured.get("candidate"), analysis) + _figures(
            "stable", measured.get("stable"), None
        )
        lines += ["    " + line for line in table(["VERSION", "FIGURE", "VALUE", "LIMIT"], rows).splitlines()]
    elif phase == "Progressing":
        lines.append("  Analysis:    no figures yet: the first are read when the step's window has run")
    return lines


def get(cluster: Cluster, printer: Printer, name: str, output: str | None, watch: bool, interval: float = 2.0) -> int:
    if output:
        printer.line(dump(cluster.get(KIND, name), output))
        return 0
    shown = ""
    try:
        while True:
            md = cluster.get(KIND, name)
            text = view(md, cluster.events(md), printer)
            if not watch:
                printer.line(text)
                return 0
            if text != shown:
                if printer.tty:
                    printer.out.write("\x1b[H\x1b[2J")  # redraw in place
                printer.line(text + ("\n" if not printer.tty else ""))
                printer.out.flush()
                shown = text
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def decide(
    cluster: Cluster,
    printer: Printer,
    name: str,
    action: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Refuse what the operator would refuse, else write the decision and wait for the operator to act on it."""
    obj = cluster.get(KIND, name)
    md = canary.effective(ModelDeployment.model_validate(obj))
    by = cluster.whoami()
    wanted = manual.Manual(uuid.uuid4().hex[:16], action, by)
    why = manual.refusal(md, wanted)
    if why is not None:
        raise PluginError(f"error: cannot {action.replace('-full', '')} modeldeployment/{name}: {why}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps({"id": wanted.id, "action": action, "by": by, "at": stamp})
    cluster.annotate(KIND, name, {manual.DECISION: body})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = cluster.get(KIND, name)
        status = obj.get("status") or {}
        if status.get("decision") == wanted.id:
            return _report(cluster, printer, obj, wanted)
        sleep(0.5)
    raise PluginError(
        f"error: the operator has not acted on the {action} of modeldeployment/{name} within {timeout:.0f}s; "
        f"the decision stays in annotation {manual.DECISION} and is applied when the operator runs"
    )


def _report(cluster: Cluster, printer: Printer, obj: dict[str, Any], wanted: manual.Manual) -> int:
    refused = [
        e for e in cluster.events(obj) if e.get("reason") == "DecisionRefused" and wanted.by in (e.get("message") or "")
    ]
    last = ((obj.get("status") or {}).get("history") or [{}])[-1]
    if last.get("by") == wanted.by and not refused:
        split = ", ".join(
            f"version {t['version']} {t['percent']}%" for t in (obj.get("status") or {}).get("traffic") or []
        )
        printer.line(
            f"modeldeployment.lathe.dev/{obj['metadata']['name']} {wanted.action}: {last.get('action')} version {last.get('version')}: now serving {split}"
        )
        return 0
    message = refused[-1].get("message") if refused else "the operator did not apply it"
    raise PluginError(f"error: {message}")

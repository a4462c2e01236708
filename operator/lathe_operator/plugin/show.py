"""Printing: kubectl-style tables and ages, colours only on a terminal, ``-o json|yaml``."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

COLOURS = {"green": "32", "red": "31", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Terminal control a log line or a status message may carry (a trainer writes them): escape sequences (CSI, OSC
# and the rest) and control characters other than newline and tab. Cursor moves, screen clears, window titles
# and hyperlinks from a tenant's output never reach the reader's terminal.
CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b.?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def clean(text: str, colour: bool = False) -> str:
    """``text`` without terminal control; with ``colour``, colour codes (SGR) stay: they only paint."""
    if not colour:
        return CONTROL.sub("", text)
    kept = ANSI.split(text)
    codes = ANSI.findall(text)
    return "".join(CONTROL.sub("", part) + (codes[i] if i < len(codes) else "") for i, part in enumerate(kept))


class Printer:
    """Where output goes and whether it may be coloured (``--color auto`` colours a terminal only)."""

    def __init__(self, out: TextIO | None = None, colour: str = "auto") -> None:
        self.out = out or sys.stdout
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        plain = "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"
        self.colour = colour == "always" or (colour == "auto" and tty and not plain)
        self.tty = tty

    def paint(self, text: str, colour: str) -> str:
        return f"\x1b[{COLOURS[colour]}m{text}\x1b[0m" if self.colour and text else text

    def ready(self, status: str, text: str | None = None) -> str:
        """A readiness word in its colour: True green, False red, anything else yellow."""
        colour = {"True": "green", "False": "red"}.get(status, "yellow")
        return self.paint(text if text is not None else status or "Unknown", colour)

    def line(self, text: str = "") -> None:
        print(clean(text, colour=True), file=self.out)

    def write(self, text: str) -> None:
        """Text from elsewhere (a pod's log, a local run's log), as it is but for terminal control."""
        self.out.write(clean(text))


def width(text: str) -> int:
    return len(ANSI.sub("", text))


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns three spaces apart, like ``kubectl get``; cells may carry colour codes."""
    cells = [header] + rows
    widths = [max(width(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        padded = [cell + " " * (widths[i] - width(cell)) for i, cell in enumerate(row)]
        lines.append("   ".join(padded).rstrip())
    return "\n".join(lines)


def when(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def age(value: Any, now: datetime | None = None) -> str:
    """kubectl's short ages: 45s, 3m12s, 5h, 2d3h, 40d; ``<unknown>`` without a time."""
    start = when(value)
    if start is None:
        return "<unknown>"
    seconds = max(0, int(((now or datetime.now(UTC)) - start).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def condition(obj: dict[str, Any], kind: str = "Ready") -> dict[str, str]:
    found = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)
    return {"status": "", "reason": "", "message": "", **(found or {})}


def dump(value: Any, output: str) -> str:
    """``-o json`` (kubectl's four-space indent) or ``-o yaml``."""
    if output == "json":
        return json.dumps(value, indent=4, default=str)
    return yaml.safe_dump(json.loads(json.dumps(value, default=str)), sort_keys=False).rstrip()


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as kubectl prints them: a v1 List."""
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def figure(value: Any, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def short(version: str | None, length: int = 12) -> str:
    """A dataset version as people read it: the first hex digits, like a short git hash."""
    return (version or "-").removeprefix("sha256:")[:length]

"""The drift check's HTML report: one self-contained page (inline CSS and SVG, no script, no CDN).

Per column: the reference and current distributions on the same bins (or categories)
side by side, the test, its score against the threshold; on top: the verdict, the live
accuracy, and the drift share of recent checks.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from . import statistics, window
from .reference import columns as reference_columns

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2433;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} .muted{color:#667085} .tag{padding:2px 8px;border-radius:10px;color:#fff}
.Drift{background:#c4320a}.NoDrift{background:#067647}.InsufficientData{background:#667085}
table{border-collapse:collapse;width:100%;margin-top:16px} td,th{padding:6px 8px;border-bottom:1px solid #eaecf0;
text-align:left;vertical-align:middle} tr.drifted td{background:#fef3f2} .num{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""
REF, CUR = "#98a2b3", "#2e90fa"
MAX_COLUMNS = 200  # charts drawn; the table lists every column


def _bars(expected: np.ndarray, observed: np.ndarray, width: int = 260, height: int = 48) -> str:
    """Reference and current shares as paired bars."""
    if expected.size == 0:
        return ""
    top = max(float(expected.max()), float(observed.max()), 1e-9)
    slot = width / expected.size
    bars = []
    for i, (e, o) in enumerate(zip(expected, observed)):
        for j, (value, colour) in enumerate(((e, REF), (o, CUR))):
            h = height * float(value) / top
            bars.append(
                f'<rect x="{i * slot + j * slot / 2:.1f}" y="{height - h:.1f}" width="{max(slot / 2 - 0.5, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
    return f'<svg width="{width}" height="{height}" role="img">{"".join(bars)}</svg>'


def _trend(history: list[dict[str, Any]], share: float | None, width: int = 260, height: int = 40) -> str:
    points = [h["share"] for h in history if h.get("share") is not None] + ([share] if share is not None else [])
    if len(points) < 2:
        return '<span class="muted">the first check</span>'
    step = width / (len(points) - 1)
    line = " ".join(f"{i * step:.1f},{height - height * float(p):.1f}" for i, p in enumerate(points))
    return (
        f'<svg width="{width}" height="{height}" role="img"><polyline points="{line}" fill="none" '
        f'stroke="{CUR}" stroke-width="2"/></svg>'
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else escape(str(value))


def render(
    request: dict[str, Any],
    report: dict[str, Any],
    history: list[dict[str, Any]],
    profile: dict[str, Any],
    current: window.Window,
) -> str:
    reference = reference_columns(profile)
    rows = []
    for n, c in enumerate(report["columns"]):
        ref, chart = reference.get(c["name"]), ""
        if c["status"] == "Checked" and ref is not None and n < MAX_COLUMNS:
            values = current.columns[c["name"]]
            if not isinstance(ref, statistics.Categorical):
                values = np.asarray(values, dtype="float64")
                values = values[np.isfinite(values)]
            else:
                values = statistics.texts([v for v in values if v is not None and v == v])
            expected, observed, _ = statistics.shares(ref, values)
            chart = _bars(expected, observed)
        rows.append(
            f'<tr class="{"drifted" if c["drifted"] else ""}"><td>{escape(c["name"])}</td><td>{c["kind"]}</td>'
            f'<td>{escape(c["status"])}</td><td>{escape(c["test"] or "")}</td><td class="num">{_fmt(c["statistic"])}'
            f'</td><td class="num">{_fmt(c["pValue"])}</td><td class="num">{_fmt(c["threshold"])}</td>'
            f"<td>{'yes' if c['drifted'] else 'no'}</td><td>{chart}</td></tr>"
        )
    prediction = report.get("prediction")
    predicted = (
        (
            f"prediction drift: {_fmt(prediction['statistic'])} ({prediction['test']}, threshold "
            f"{_fmt(prediction['threshold'])}){' - drifted' if prediction['drifted'] else ''}"
        )
        if prediction
        else ""
    )
    accuracy = (
        f"live accuracy {_fmt(report['liveAccuracy'])} on {report['labelled']} labelled samples"
        if report.get("liveAccuracy") is not None
        else f"{report['labelled']} labelled samples"
    )
    span = report.get("window") or {}
    ref = report["reference"]
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Drift: {escape(request["namespace"])}/{escape(request["monitor"])}</title><style>{STYLE}</style></head><body>
<h1>{escape(request["monitor"])} <span class="tag {report["verdict"]}">{report["verdict"]}</span></h1>
<p class="muted">{escape(report["message"])}</p>
<p>Reference: Dataset {escape(ref["name"])} {escape(ref["version"])}. Current: {escape(_source(report))}
{escape(str(span.get("start", "")))} to {escape(str(span.get("end", "")))}, {report["samples"]} samples.<br>
{escape(accuracy)}. {escape(predicted)}</p>
<p>Drift share of recent checks: {_trend(history, report.get("driftShare"))}</p>
<p class="legend"><span style="background:{REF}"></span>reference<span style="background:{CUR}"></span>current</p>
<table><thead><tr><th>column</th><th>kind</th><th>status</th><th>test</th><th class="num">score</th>
<th class="num">p-value</th><th class="num">threshold</th><th>drifted</th><th>reference vs current</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""


def _source(report: dict[str, Any]) -> str:
    source = report["source"]
    if source["type"] == "dataset":
        return f"Dataset {source['name']} {source.get('version') or 'newest version'}"
    return f"request logs of {source['deployment']}"

"""``lathe datasets NAME --diff V1 V2``: what changed between two versions, column by column, from their profiles."""

from __future__ import annotations

from typing import Any

from .show import Printer, figure, short, table

NUMERIC = ("count", "missing", "mean", "std", "min", "max", "median")


def _median(column: dict[str, Any], levels: list[float]) -> float | None:
    quantiles = column.get("quantiles") or []
    if not quantiles or len(quantiles) != len(levels):
        return None
    index = min(range(len(levels)), key=lambda i: abs(levels[i] - 0.5))
    return float(quantiles[index])


def _numeric(a: dict[str, Any], b: dict[str, Any], levels: tuple[list[float], list[float]]) -> dict[str, Any]:
    figures = {}
    for name in NUMERIC:
        before = _median(a, levels[0]) if name == "median" else a.get(name)
        after = _median(b, levels[1]) if name == "median" else b.get(name)
        figures[name] = {"before": before, "after": after}
    mean, std = figures["mean"], figures["std"]
    shift = None
    if None not in (mean["before"], mean["after"], std["before"]) and std["before"]:
        shift = (mean["after"] - mean["before"]) / std["before"]
    return {"kind": "numeric", "figures": figures, "meanShiftInStd": shift}


def _categorical(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    share_a, share_b = _shares(a), _shares(b)
    changes = {
        k: {"before": share_a.get(k, 0.0), "after": share_b.get(k, 0.0)} for k in sorted(set(share_a) | set(share_b))
    }
    moved = sorted(changes, key=lambda k: -abs(changes[k]["after"] - changes[k]["before"]))[:5]
    total = 0.5 * sum(abs(v["after"] - v["before"]) for v in changes.values())
    return {
        "kind": "categorical",
        "categories": {"before": len(share_a), "after": len(share_b)},
        "added": sorted(set(share_b) - set(share_a))[:20],
        "removed": sorted(set(share_a) - set(share_b))[:20],
        "mostChanged": {k: changes[k] for k in moved},
        "totalVariation": total,
    }


def _shares(column: dict[str, Any]) -> dict[str, float]:
    counts = column.get("frequencies") or {}
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in counts.items()}


def compare(m1: dict[str, Any], m2: dict[str, Any], p1: dict[str, Any], p2: dict[str, Any]) -> dict[str, Any]:
    """The difference of two versions: rows, schema, and each column's profile."""
    c1, c2 = p1.get("columns") or {}, p2.get("columns") or {}
    levels = (p1.get("quantileLevels") or [], p2.get("quantileLevels") or [])
    columns: dict[str, Any] = {}
    for name in sorted(set(c1) | set(c2), key=lambda n: (list(c1) + [x for x in c2 if x not in c1]).index(n)):
        if name not in c2:
            columns[name] = {"change": "removed"}
        elif name not in c1:
            columns[name] = {"change": "added"}
        elif c1[name].get("kind") != c2[name].get("kind"):
            columns[name] = {"change": f"kind {c1[name].get('kind')} -> {c2[name].get('kind')}"}
        elif c1[name].get("kind") == "numeric":
            columns[name] = {"change": "compared", **_numeric(c1[name], c2[name], levels)}
        else:
            columns[name] = {"change": "compared", **_categorical(c1[name], c2[name])}
    target = {"before": (p1.get("target") or {}).get("classes"), "after": (p2.get("target") or {}).get("classes")}
    return {
        "before": {"version": m1.get("version"), "rows": m1.get("rows"), "createdAt": m1.get("createdAt")},
        "after": {"version": m2.get("version"), "rows": m2.get("rows"), "createdAt": m2.get("createdAt")},
        "columns": columns,
        "target": target if target["before"] or target["after"] else None,
    }


def render(result: dict[str, Any], printer: Printer) -> str:
    before, after = result["before"], result["after"]
    lines = [
        f"--- {short(before['version'])}  {before['rows']} rows  {before.get('createdAt') or ''}",
        f"+++ {short(after['version'])}  {after['rows']} rows  {after.get('createdAt') or ''}",
        "",
    ]
    rows = []
    for name, column in result["columns"].items():
        if column["change"] != "compared":
            colour = "green" if column["change"] == "added" else "red"
            rows.append([name, printer.paint(column["change"], colour), "", "", "", ""])
        elif column["kind"] == "numeric":
            f = column["figures"]
            shift = column["meanShiftInStd"]
            mark = (
                printer.paint(f"{shift:+.2f} sd", "yellow" if shift is not None and abs(shift) >= 0.1 else "dim")
                if shift is not None
                else "-"
            )
            rows.append(
                [
                    name,
                    "numeric",
                    f"{figure(f['mean']['before'], '{:.4g}')} -> {figure(f['mean']['after'], '{:.4g}')}",
                    f"{figure(f['std']['before'], '{:.4g}')} -> {figure(f['std']['after'], '{:.4g}')}",
                    f"{f['missing']['before']} -> {f['missing']['after']}",
                    mark,
                ]
            )
        else:
            tv = column["totalVariation"]
            rows.append(
                [
                    name,
                    "categorical",
                    f"{column['categories']['before']} -> {column['categories']['after']} categories",
                    ", ".join(f"+{c}" for c in column["added"][:3]) or "-",
                    ", ".join(f"-{c}" for c in column["removed"][:3]) or "-",
                    printer.paint(f"TV {tv:.3f}", "yellow" if tv >= 0.05 else "dim"),
                ]
            )
    lines.append(table(["COLUMN", "KIND", "MEAN / CATEGORIES", "STD / ADDED", "MISSING / REMOVED", "SHIFT"], rows))
    if result.get("target"):
        lines += ["", f"target classes: {result['target']['before']} -> {result['target']['after']}"]
    return "\n".join(lines)

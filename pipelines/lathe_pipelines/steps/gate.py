"""Regression gates: metric ranges, and maximum regressions against a baseline model's metrics."""

from __future__ import annotations

from typing import Any

from .metrics import LOWER_IS_BETTER


def evaluate(
    gates: list[dict[str, Any]], metrics: dict[str, float], baseline: dict[str, float] | None
) -> list[dict[str, Any]]:
    """One result per gate: value, effective bounds, baseline value, passed. Unknown metrics fail."""
    results = []
    for gate in gates:
        name = gate["metric"]
        value = metrics.get(name)
        low, high = gate.get("min"), gate.get("max")
        base = (baseline or {}).get(name)
        if gate.get("maxRegression") is not None and base is not None:
            # Lower is better for losses and errors; for them a regression is an increase.
            if name in LOWER_IS_BETTER or name.endswith("_loss"):
                limit = base + gate["maxRegression"]
                high = limit if high is None else min(high, limit)
            else:
                limit = base - gate["maxRegression"]
                low = limit if low is None else max(low, limit)
        passed = value is not None and (low is None or value >= low) and (high is None or value <= high)
        results.append({"metric": name, "value": value, "min": low, "max": high, "baseline": base, "passed": passed})
    return results


def describe(result: dict[str, Any]) -> str:
    bounds = (
        " and ".join(
            b
            for b in (
                f">= {result['min']:.4f}" if result["min"] is not None else "",
                f"<= {result['max']:.4f}" if result["max"] is not None else "",
            )
            if b
        )
        or "a known metric"
    )
    value = "missing" if result["value"] is None else f"{result['value']:.4f}"
    return f"{result['metric']} = {value}, needs {bounds}"

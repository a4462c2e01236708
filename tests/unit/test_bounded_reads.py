"""What the operator reads where a tenant's code can write is bounded: objects by size, metrics by series."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from lathe_core.registry import ModelRegistry
from lathe_core.runs import read_progress, read_report
from lathe_core.store import MAX_JSON, ObjectTooLarge, get_json
from lathe_core.store_local import LocalStore
from lathe_operator.backends.drift_metrics import MAX_COLUMN_SERIES, DriftGauges


def test_a_read_past_its_limit_is_refused_without_reading_further(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a", b"x" * 101)
    assert store.get("a", limit=101) == b"x" * 101
    with pytest.raises(ObjectTooLarge):
        store.get("a", limit=100)


def test_an_oversized_report_ends_the_run_failed_and_oversized_progress_is_ignored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("report.json", b'{"outcome": "Succeeded", "pad": "' + b"x" * MAX_JSON + b'"}')
    store.put("progress.json", json.dumps({"epoch": 3, "pad": "x" * (1 << 20)}).encode())
    store.put("not-json.json", b"[1, 2")
    report = read_report(store, "report.json")
    assert report is not None and (report["outcome"], report["reason"]) == ("Failed", "ObjectTooLarge")
    assert read_report(store, "not-json.json")["reason"] == "InvalidObject"  # type: ignore[index]
    assert read_progress(store, "progress.json") == {} and get_json(store, "absent.json") is None
    store.put("progress.json", b'{"epoch": 3}')
    assert read_progress(store, "progress.json") == {"epoch": 3}


def test_a_model_card_past_the_bound_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    registry = ModelRegistry(store, "ml", "digits")
    version, _ = registry.register(b"onnx", {"run": {"id": "r"}, "pad": "x" * MAX_JSON})
    with pytest.raises(ObjectTooLarge):
        registry.card(version)


def test_a_report_of_a_million_columns_exports_a_bounded_number_of_series() -> None:
    registry = CollectorRegistry()
    columns = [
        {"name": f"c{i}" + "y" * 300, "status": "Checked", "test": "psi", "statistic": 0.5, "drifted": i % 1000 == 999}
        for i in range(1_000_000)
    ]
    DriftGauges(registry).export("ml", "m", {"outcome": "Succeeded", "columns": columns}, 300, None)
    series = [s for m in registry.collect() if m.name == "lathe_drift_column_drifted" for s in m.samples]
    assert len(series) == MAX_COLUMN_SERIES
    assert sum(s.value for s in series) == MAX_COLUMN_SERIES  # the 1,000 drifted columns come first
    assert max(len(s.labels["column"]) for s in series) == 128

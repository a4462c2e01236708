"""The train step tells the operator which epoch it has reached, through the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lathe_core import layout
from lathe_core.store_local import LocalStore
from lathe_pipelines.steps import reports


def test_training_progress_is_written_for_the_operator_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATHE_STORE_URI", f"file://{tmp_path}")
    key = layout.training_report("ns", "clf", "run-1")
    record = reports.progress(key, every=3600)
    for epoch in range(1, 6):
        record({"epoch": epoch, "epochs": 5, "valAccuracy": 0.5})
        stored = json.loads(LocalStore(str(tmp_path)).get(layout.training_progress("ns", "clf", "run-1")))
        assert stored["epoch"] == (1 if epoch < 5 else 5)  # the first, then nothing until the last

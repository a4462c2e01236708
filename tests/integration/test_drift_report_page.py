"""The drift report as a person sees it: headless Chromium renders it with no error and no request out."""

from __future__ import annotations

import os
from pathlib import Path

from lathe_core.store_local import LocalStore
from lathe_pipelines.drift import run as drift
from tests.servers.browser import load
from tests.unit.test_drift_run import FEATURES, FRAME, log, request, store  # noqa: F401  (fixture)

SHOTS = Path(os.environ.get("LATHE_SCREENSHOTS", "/tmp/lathe-screenshots"))


def test_the_report_renders_without_errors_or_outside_requests(store: LocalStore, tmp_path: Path) -> None:
    sample = FRAME.sample(1500, random_state=3)
    darker = (sample[FEATURES].to_numpy(dtype="float32") * 0.5).round()
    log(store, darker, sample["label"].astype(str).tolist(), sample["label"].astype(str).tolist())
    report = drift.run(store, request())
    page = tmp_path / "report.html"
    page.write_text(report["html"])
    loaded = load(page)
    assert loaded.errors == [] and [u for u in loaded.requests if not u.startswith("file://")] == []
    assert loaded.screenshot.startswith(b"\x89PNG") and len(loaded.screenshot) > 20_000
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "drift-report.png").write_bytes(loaded.screenshot)


def test_the_browser_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The same check on a page with a script error and an outside image: both are caught."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png"><script>missing()</script></body></html>')
    loaded = load(page)
    assert any(e.startswith("exception") for e in loaded.errors) and any("127.0.0.1:9" in u for u in loaded.requests)

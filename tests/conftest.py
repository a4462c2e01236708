"""Shared test helpers: paths, example loading, bounded waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*/*.yaml"))

T = TypeVar("T")


def load_yaml(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def eventually(check: Callable[[], T], timeout: float = 30, interval: float = 0.2) -> T:
    """Call ``check`` until it returns a truthy value without raising; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = None
        except (AssertionError, LookupError) as error:
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {last!r}") from last
        time.sleep(interval)

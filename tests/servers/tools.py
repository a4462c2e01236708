"""Paths of the cached command-line tools the tests drive (helm, kubectl)."""

from __future__ import annotations

import os
from pathlib import Path

from .process import binary

HELM_VERSION = os.environ.get("HELM_VERSION", "v3.19.0")


def helm() -> Path:
    return binary(f"helm-{HELM_VERSION}/helm")

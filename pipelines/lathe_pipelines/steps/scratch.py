"""Scratch directories named after the process that made them, so the next run clears what a killed one left.

Ingest writes a data.parquet the size of the source to its scratch directory, and up to
256 MiB to /dev/shm, which is memory. A process killed with SIGKILL cleans nothing up: the
next ``directory`` call with the same prefix removes every directory whose process is gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def directory(prefix: str, parent: str | None = None) -> Path:
    """A new directory ``<parent>/<prefix><pid>-<random>``; those of dead processes under ``parent`` go first."""
    root = Path(parent or tempfile.gettempdir())
    for left in root.glob(f"{prefix}*"):
        pid = left.name.removeprefix(prefix).split("-", 1)[0]
        if left.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))

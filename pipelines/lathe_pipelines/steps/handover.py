"""The Job backend's trainer in a container of its own: hand it its input, wait for it, take its output.

In a Job pod with ``spec.trainer``, the pipeline's container (the pipelines image, the store's keys) and the
trainer's container (the team's image; no store Secret, no API token, its own PID namespace, neither this
container's file system nor the test split) share two volumes only:

    $LATHE_TRAINER_INPUT    written here: train.parquet, validation.parquet, schema.json, then ``ready``
                            (or ``cancel`` when the pipeline ends without reaching the trainer)
    $LATHE_TRAINER_OUTPUT   written there: model.onnx and the rest of the contract, ``trainer.log``, then
                            ``exit`` (the command's exit status)

``lathe_core.handover`` holds the contract both sides use (names, and the trainer container's ``WRAPPER``).
What the trainer wrote is tenant-written: its log is read from the end, 64 KiB at most.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from lathe_core.handover import CANCEL, EXIT, INPUT_ENV, LOG, OUTPUT_ENV, READY

from .errors import TrainingFailed

LOG_TAIL = 64 << 10
LOG_LINES = 20


def active() -> bool:
    """Whether this pipeline hands its trainer over to a container of its own (the Job backend)."""
    return bool(os.environ.get(INPUT_ENV) and os.environ.get(OUTPUT_ENV))


def run(input_dir: str, output_dir: str, poll: float = 1.0) -> float:
    """Give the trainer container its input, wait for its exit status, copy its output to ``output_dir``.
    No deadline of its own: the Job's ``activeDeadlineSeconds`` ends a trainer that never finishes."""
    inbox, outbox = Path(os.environ[INPUT_ENV]), Path(os.environ[OUTPUT_ENV])
    for path in Path(input_dir).iterdir():  # file by file: the volume's own folder is not ours to chmod
        (shutil.copytree if path.is_dir() else shutil.copyfile)(path, inbox / path.name)
    started = time.monotonic()
    (inbox / READY).write_text("")
    while not (outbox / EXIT).exists():
        time.sleep(poll)
    status = (outbox / EXIT).read_text()[:16].strip()
    seconds = time.monotonic() - started
    if status != "0":
        raise TrainingFailed(
            "TrainerFailed", f"the trainer exited with {status or 'no status'}; its last lines:\n{tail(outbox / LOG)}"
        )
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    for path in outbox.iterdir():
        if path.name not in (EXIT, LOG) and not path.is_symlink():
            copy = shutil.copytree if path.is_dir() else shutil.copyfile
            copy(path, Path(output_dir) / path.name)
    print(tail(outbox / LOG, lines=10_000), flush=True)  # in the pipeline's log too, as a process trainer's is
    return seconds


def cancel() -> None:
    """The pipeline ended before its trainer step: let the waiting trainer container end too."""
    if active():
        inbox = Path(os.environ[INPUT_ENV])
        if not (inbox / READY).exists():
            (inbox / CANCEL).write_text("")


def tail(path: Path, lines: int = LOG_LINES) -> str:
    """The last lines of a file the trainer wrote, from its last 64 KiB at most."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - LOG_TAIL))
            text = log.read(LOG_TAIL).decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])

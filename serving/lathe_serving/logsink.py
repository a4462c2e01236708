"""Sampled request/response pairs and ground-truth feedback, written in batches to the object store.

    logs/<namespace>/<deployment>/<yyyy-mm-dd>/<hh>/<unix-ms>-<pid>-<seq>.parquet

One Parquet file per flush (every ``max_records`` records or ``max_age`` seconds). Rows are
either predictions (``kind=prediction``: features, probabilities, predicted class,
version, shadow flag, and the answer's signature tag) or feedback (``kind=feedback``: the
true class of one row of an answer this server gave, the answer's tag, and the client
address it came from). DriftMonitor reads these files.

Bounded: the records pending and being written hold at most ``max_bytes`` (counted per row
as it is added; beyond it a row is refused and the caller counts the loss), one write runs at
a time, and the id, tag and source columns are dictionary-encoded in memory and in the file,
so a reader holds each distinct id once however many rows repeat it.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lathe_core import layout

TEXT = pa.dictionary(pa.int32(), pa.string())
MAX_BYTES = 64 << 20  # pending and in-flight records; beyond it new rows are refused (and counted by the caller)

SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("request_id", TEXT),
        ("time", pa.timestamp("ms", tz="UTC")),
        ("version", pa.int32()),
        ("shadow", pa.bool_()),
        ("features", pa.list_(pa.float32())),
        ("categories", pa.list_(pa.string())),  # a model's categorical columns, raw, in the card's order
        ("probabilities", pa.list_(pa.float32())),
        ("prediction", pa.string()),
        ("truth", pa.string()),
        ("correct", pa.bool_()),
        ("answer", TEXT),  # the signature tag of the served answer (answers.Answers.sign) a row belongs to
        ("source", TEXT),  # feedback: the client address it came from
    ]
)


def size(record: dict[str, Any]) -> int:
    """Roughly what a pending record holds in memory: the dict, its float lists (a float object and a pointer
    each), its strings."""
    floats = len(record.get("features") or ()) + len(record.get("probabilities") or ())
    text = sum(len(record.get(k) or "") for k in ("request_id", "prediction", "truth", "answer", "source"))
    text += sum(56 + len(v) for v in record.get("categories") or ())
    return 400 + 32 * floats + text


class LogSink:
    """Collects records; ``flush()`` writes them (called from a worker thread by the server)."""

    def __init__(
        self,
        put: Callable[[str, bytes], None],
        namespace: str,
        deployment: str,
        max_records: int = 1000,
        max_age: float = 5.0,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.put, self.namespace, self.deployment = put, namespace, deployment
        self.max_records, self.max_age, self.max_bytes = max_records, max_age, max_bytes
        self.records: list[dict[str, Any]] = []
        self.held = 0  # approximate bytes the pending records take in memory
        self.writing = 0  # and the records taken for the write in progress
        self.oldest = 0.0
        self.sequence = 0

    def add(self, record: dict[str, Any]) -> bool:
        """Keep one row for the next write; False (nothing kept) when the bound is reached."""
        weight = size(record)
        if self.held + self.writing + weight > self.max_bytes:
            return False
        if not self.records:
            self.oldest = time.monotonic()
        record.setdefault("time", datetime.now(UTC))
        self.records.append(record)
        self.held += weight
        return True

    def due(self) -> bool:
        return bool(self.records) and (
            len(self.records) >= self.max_records or time.monotonic() - self.oldest >= self.max_age
        )

    def take(self) -> list[dict[str, Any]]:
        """The pending records, for one write; their bytes count against the bound until ``written``."""
        records, self.records = self.records, []
        self.writing, self.held = self.writing + self.held, 0
        return records

    def written(self, records: list[dict[str, Any]]) -> None:
        """A write taken by ``take`` ended (stored or dropped): its bytes no longer count."""
        self.writing = max(0, self.writing - sum(size(r) for r in records))

    def write(self, records: list[dict[str, Any]]) -> str | None:
        """One Parquet object per hour partition the records fall in; returns the last key."""
        key = None
        hours: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            hours.setdefault(layout.log_partition(self.namespace, self.deployment, record["time"]), []).append(record)
        for prefix, rows in hours.items():
            self.sequence += 1
            table = pa.Table.from_pylist([{name: row.get(name) for name in SCHEMA.names} for row in rows], SCHEMA)
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="zstd")
            key = layout.log_object(prefix, int(time.time() * 1000), os.getpid(), self.sequence)
            self.put(key, buffer.getvalue())
        return key


def store_put() -> Callable[[str, bytes], None]:
    """``put`` for Lathe's object store as configured by LATHE_STORE_* (imported only when logging is on)."""
    from lathe_core.stores import open_configured_store

    return open_configured_store().put

"""The closed loop's labels: only truth bound to an answer the server gave, once per answer, within caps.

The review's poisoning: a client labels another replica's request ids, twice, without the signed answer, and
replays a signed answer with other truth. Neither moves live accuracy nor the harvested rows.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lathe_core.store_local import LocalStore
from lathe_pipelines.drift import harvest, window
from lathe_pipelines.sample_data import digits
from lathe_serving import protocols
from lathe_serving.answers import Answers
from lathe_serving.logsink import SCHEMA, LogSink
from lathe_serving.service import Service
from tests.unit.conftest import RunService

ROWS = digits().drop(columns=["label"]).to_numpy(np.float32)
FEATURES = [f"pixel_{i}" for i in range(64)]


def logged(store: LocalStore) -> pa.Table | None:
    now = datetime.now(UTC)
    return window.read_logs(store, "ml", "digits", now - timedelta(hours=1), now + timedelta(minutes=1))


def figures(table: pa.Table | None) -> tuple[Any, ...]:
    seen = window.from_logs(table, FEATURES)
    rows, truth = harvest.labelled(table, 64)
    return seen.labelled, seen.accuracy, rows.tobytes(), truth


def test_the_reviews_poisoning_moves_neither_live_accuracy_nor_the_harvest(
    run_service: RunService, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    replica_a = LogSink(store.put, "ml", "digits")
    replica_b = LogSink(store.put, "ml", "digits")

    async def serve_and_label(served: Service) -> list[tuple[dict[str, Any], list[str]]]:
        served.deployment.settings.sample_rate = 1.0
        answered = []
        for i in range(10):
            outputs, tag = await served.predict(served.deployment.route(), ROWS[i : i + 1], f"r{i}")
            model = served.deployment.route()
            response = protocols.seldon_response(outputs, model.class_names(), "digits", 3, f"r{i}", tag)
            answered.append((response, model.labels(outputs)))
        for i, (response, labels) in enumerate(answered[:6]):  # honest truth: the answer itself
            served.feedback(f"r{i}", labels, response, source="10.0.0.1")
        replica_a.write(replica_a.take())
        return answered

    answered = run_service(serve_and_label, replica_a)
    honest = figures(logged(store))
    assert honest[0] == 6 and honest[1] == 1.0

    async def poison(served: Service) -> None:
        served.answers = Answers(b"k" * 32)  # another replica: the same key, none of replica A's answers
        wrong = {"0": "1"}
        for i in range(10):
            for _ in range(2):  # another replica's ids, labelled twice, without the signed answer
                assert (
                    served.feedback(f"r{i}", ["1" if answered[i][1] != ["1"] else "2"], source="6.6.6.6")["matched"]
                    is False
                )
        response, labels = answered[0]  # a signed answer replayed here with other truth: graded here, once...
        served.feedback("r0", [wrong.get(labels[0], "0")], response, source="6.6.6.6")
        replica_b.write(replica_b.take())

    run_service(poison, replica_b)
    table = logged(store)
    assert table is not None and pa.types.is_dictionary(table.schema.field("request_id").type)
    assert figures(table) == honest  # ... but the first truth of an answer wins


def test_truth_an_older_server_logged_unbound_is_not_used() -> None:
    legacy = pa.table(
        {
            "kind": ["prediction", "feedback"],
            "request_id": ["r1", "r1"],
            "shadow": [False, False],
            "features": [[1.0] * 64, None],
            "prediction": ["3", None],
            "truth": [None, "4"],
        }
    )
    seen = window.from_logs(legacy, FEATURES)
    assert seen.samples == 1 and seen.labelled == 0 and harvest.labelled(legacy, 64)[1] == []


def test_harvest_takes_classes_the_model_knows_and_its_caps() -> None:
    records = [
        {"kind": "prediction", "request_id": f"r{i}", "answer": f"t{i}", "features": [float(i)] * 2} for i in range(6)
    ]
    truth = ["1", "1", "cat", "2", "1", "2"]
    sources = ["a", "a", "a", "b", "a", "a"]
    records += [
        {"kind": "feedback", "request_id": f"r{i}", "answer": f"t{i}", "truth": t, "source": s}
        for i, (t, s) in enumerate(zip(truth, sources, strict=True))
    ]
    table = pa.Table.from_pylist([{n: r.get(n) for n in SCHEMA.names} for r in records], SCHEMA)
    rows, kept = harvest.labelled(table, 2, classes=["1", "2"])
    assert kept == ["1", "1", "2", "1", "2"] and rows[:, 0].tolist() == [0, 1, 3, 4, 5]
    assert harvest.labelled(table, 2, classes=["1", "2"], max_rows=2)[1] == ["1", "2"]  # the newest
    rows, kept = harvest.labelled(table, 2, classes=["1", "2"], max_share=0.5)
    assert rows[:, 0].tolist() == [3, 5]  # b has one row, so a keeps its newest one: 50% each


def test_source_caps_bound_every_sources_share() -> None:
    flood = [(i, "1", "attacker") for i in range(9_900)] + [(10_000 + i, "1", f"user-{i % 10}") for i in range(100)]
    kept = harvest.capped(flood, None, 0.2)
    counts: dict[str, int] = {}
    for _, _, source in kept:
        counts[source] = counts.get(source, 0) + 1
    assert max(counts.values()) <= 0.2 * len(kept) and counts["attacker"] >= 1
    assert all(counts[f"user-{i}"] == 10 for i in range(10))  # the honest sources keep every row
    assert harvest.capped([(1, "1", "only")] * 5, None, 0.9) == []  # one source alone is all of it
    assert harvest.capped(flood, 10, None) == flood[-10:]


def test_logs_read_back_from_a_file_keep_their_bound_truth(tmp_path: Path) -> None:
    sink = LogSink(LocalStore(tmp_path).put, "ml", "digits")
    sink.add({"kind": "prediction", "request_id": "r", "answer": "t", "shadow": False, "features": [0.0] * 64})
    sink.add({"kind": "prediction", "request_id": "r", "answer": "t", "shadow": False, "features": [1.0] * 64})
    sink.add({"kind": "feedback", "request_id": "r", "answer": "t", "truth": "5"})
    sink.add({"kind": "feedback", "request_id": "r", "answer": "t", "truth": "6"})
    key = sink.write(sink.take())
    assert key is not None
    table = pq.read_table(io.BytesIO(LocalStore(tmp_path).get(key)))
    rows, truth = harvest.labelled(table, 64)
    assert truth == ["5", "6"] and rows[:, 0].tolist() == [0.0, 1.0]

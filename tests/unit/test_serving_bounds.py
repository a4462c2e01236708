"""The model server against its own clients: bounded ids, truth, text and logs; pinned versions kept apart.

Each test is one finding of the security review (docs/security.md) and failed before its fix.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lathe_pipelines.drift import check, statistics
from lathe_pipelines.drift.reference import Categorical
from lathe_pipelines.sample_data import digits
from lathe_serving import protocols
from lathe_serving.logsink import LogSink
from lathe_serving.model import MAX_TEXT, ModelError, _category
from lathe_serving.service import Service
from tests.unit.conftest import RunService

ROWS = digits().drop(columns=["label"]).to_numpy(np.float32)


def dropped(served: Service) -> float:
    found = served.metrics.registry.get_sample_value(
        "lathe_model_log_records_dropped_total", {"namespace": "", "deployment": ""}
    )
    return found or 0.0


def test_feedback_naming_a_request_id_longer_than_requests_may_have_is_refused() -> None:
    body = {"response": {"meta": {"puid": "x" * 129}}, "truth": {"data": {"ndarray": [1]}}}
    with pytest.raises(ModelError) as error:
        protocols.seldon_feedback(body)
    assert error.value.status_code == 400 and "at most 128" in error.value.message
    assert protocols.seldon_feedback({**body, "response": {"meta": {"puid": "x" * 128}}})[0] == "x" * 128


def test_truth_bound_to_no_answer_is_counted_and_never_logged(run_service: RunService) -> None:
    sink = LogSink(lambda key, data: None, "ml", "digits")

    async def work(served: Service) -> dict[str, Any]:
        served.deployment.settings.sample_rate = 1.0
        return served.feedback("nobody-asked", ["1"] * 10_000)

    assert run_service(work, sink)["matched"] is False
    assert sink.records == [] and sink.held == 0  # before: 10,000 rows, each repeating the id


def test_truth_naming_a_class_the_model_lacks_is_refused(run_service: RunService) -> None:
    async def work(served: Service) -> dict[str, Any]:
        outputs, _ = await served.predict(served.deployment.route(), ROWS[:2], "r1")
        with pytest.raises(ModelError) as error:
            served.feedback("r1", ["cat", "1"])
        assert error.value.reason == "UnknownClass" and "'cat'" in error.value.message
        return served.feedback("r1", served.deployment.route().labels(outputs))  # still gradeable

    assert run_service(work, None)["correct"] == 2


def test_one_large_request_cannot_carry_the_log_past_its_bound(run_service: RunService) -> None:
    sink = LogSink(lambda key, data: None, "ml", "digits", max_bytes=50_000)

    async def work(served: Service) -> float:
        served.deployment.settings.sample_rate = 1.0
        await served.predict(served.deployment.route(), np.repeat(ROWS[:1], 1_000, axis=0), "big")
        return dropped(served)

    lost = run_service(work, sink)
    assert sink.held <= 50_000 and 0 < len(sink.records) < 1_000  # before: checked once per request, not per row
    assert lost == 1_000 - len(sink.records)


def test_records_being_written_count_against_the_bound_until_written() -> None:
    sink = LogSink(lambda key, data: None, "ml", "digits", max_bytes=5_000)
    record = {"kind": "feedback", "request_id": "r", "truth": "1"}
    while sink.add(dict(record)):
        pass
    taken = sink.take()
    assert taken and not sink.add(dict(record))  # the write in flight still holds its bytes
    sink.written(taken)
    assert sink.add(dict(record))


def test_repeated_ids_are_stored_and_read_back_once() -> None:
    stored: dict[str, bytes] = {}
    sink = LogSink(stored.__setitem__, "ml", "digits")
    for _ in range(5_000):
        sink.add({"kind": "feedback", "request_id": "i" * 128, "answer": "t" * 32, "source": "10.0.0.9", "truth": "1"})
    sink.write(sink.take())
    table = pq.read_table(io.BytesIO(next(iter(stored.values()))))
    ids = table.column("request_id").combine_chunks()
    assert pa.types.is_dictionary(ids.type) and len(ids.dictionary) == 1
    assert ids.nbytes < 5_000 * 8  # indices and one id, not 5,000 copies of 128 characters


def test_an_answer_to_a_pinned_version_is_neither_graded_nor_logged(run_service: RunService) -> None:
    sink = LogSink(lambda key, data: None, "ml", "digits")

    async def work(served: Service) -> dict[str, Any]:
        served.deployment.settings.sample_rate = 1.0
        outputs, tag = await served.predict(served.deployment.route(), ROWS[:2], "pinned-1", pinned=True)
        assert tag == "" and sink.records == []
        return served.feedback("pinned-1", served.deployment.route().labels(outputs))

    assert run_service(work, sink)["matched"] is False


def test_a_categorical_value_past_the_text_bound_is_refused() -> None:
    assert _category("z" * MAX_TEXT, "colour") == "z" * MAX_TEXT
    with pytest.raises(ModelError) as error:
        _category("z" * (MAX_TEXT + 1), "colour")
    assert (error.value.status_code, error.value.reason) == (400, "TextTooLong")


def test_one_long_logged_category_costs_its_own_size_not_every_rows() -> None:
    values = np.asarray(["a", "b"] * 1_000, dtype=object)
    values[0] = "z" * (4 << 20)  # before: a fixed-width array of 2,000 x 4 MB x 4 bytes (31 GiB)
    column = check._column("colour", Categorical({"a": 1000, "b": 1000}), values, check.StatTest("share", 0.05))
    assert column.status == "Checked" and column.samples == 2_000 and not column.drifted
    text = statistics.texts(values)
    assert text.dtype == object and text[0].startswith("sha256:") and len(text[0]) < 32

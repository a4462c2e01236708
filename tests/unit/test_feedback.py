"""Feedback is graded only against answers the deployment gave, once each, within bounded memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lathe_pipelines.sample_data import digits
from lathe_serving import protocols
from lathe_serving.answers import Answer, Answers, configured_key
from lathe_serving.logsink import LogSink
from lathe_serving.model import ModelError
from lathe_serving.service import Service
from tests.unit.conftest import RunService

ROWS = digits().drop(columns=["label"]).to_numpy(np.float32)


def graded(served: Service, correct: str) -> float:
    value = served.metrics.registry.get_sample_value(
        "lathe_model_feedback_total",
        {"namespace": "", "deployment": "", "model": "digits", "version": "3", "correct": correct},
    )
    return value or 0.0


def response(served: Service, request_id: str, outputs: np.ndarray, tag: str, version: int = 3) -> dict[str, Any]:
    model = served.deployment.route()
    return protocols.seldon_response(outputs, model.class_names(), "digits", version, request_id, tag)


def test_a_made_up_answer_grades_nothing_and_a_real_one_grades_once(run_service: RunService) -> None:
    async def work(served: Service) -> None:
        outputs, tag = await served.predict(served.deployment.route(), ROWS[:2], "r1")
        predicted = served.deployment.route().labels(outputs)
        # A client claims version 3 predicted what the truth says, for a request never made: not graded.
        forged = response(served, "r9", outputs, "0" * 32)
        assert served.feedback("r9", predicted, forged)["matched"] is False
        assert served.feedback("r9", predicted, {**forged, "meta": {"puid": "r9"}})["matched"] is False
        assert graded(served, "true") == 0
        # What the server remembers wins over what the client carries (here a rewritten version).
        assert served.feedback("r1", predicted, response(served, "r1", outputs, tag, version=4))["version"] == 3
        assert served.feedback("r1", predicted)["reason"] == "this answer was graded already"
        assert graded(served, "true") == 2

    run_service(work)


def test_a_carried_answer_is_checked_by_its_tag_in_another_worker(run_service: RunService) -> None:
    async def work(served: Service) -> None:
        outputs, tag = await served.predict(served.deployment.route(), ROWS[:1], "r1")
        served.answers = Answers(b"k" * 32)  # another worker: same key, nothing remembered
        truth = served.deployment.route().labels(outputs)
        other = "0" if truth[0] != "0" else "1"
        flipped = outputs.copy()
        flipped[0] = 0
        flipped[0, served.deployment.route().class_names().index(other)] = 1  # claims it predicted `other`
        assert served.feedback("r1", [other], response(served, "r1", flipped, tag))["matched"] is False
        assert served.feedback("r1", truth, response(served, "r1", outputs, tag))["correct"] == 1
        assert graded(served, "true") == 1 and graded(served, "false") == 0

    run_service(work)


def test_truth_that_does_not_fit_the_answer_is_refused_and_loses_nothing(run_service: RunService) -> None:
    async def work(served: Service) -> None:
        outputs, _ = await served.predict(served.deployment.route(), ROWS[:3], "r1")
        with pytest.raises(ModelError) as error:
            served.feedback("r1", ["1"] * 4)
        assert error.value.status_code == 400 and "answered with 3 rows" in error.value.message
        assert served.feedback("r1", served.deployment.route().labels(outputs))["correct"] == 3

    run_service(work)


def test_remembered_answers_are_bounded_by_classes_not_requests() -> None:
    answers = Answers(b"k", max_labels=100, max_graded=3)
    for i in range(10):
        answers.remember(f"r{i}", Answer(1, ["1"] * 30))
    assert answers.held <= 100 and list(answers.recent) == ["r7", "r8", "r9"]
    answers.remember("huge", Answer(1, ["1"] * 101))  # larger than the whole budget: not kept
    assert "huge" not in answers.recent and answers.held == 90
    for i in range(5):
        answers.graded_now(f"g{i}")
    assert list(answers.graded) == ["g2", "g3", "g4"] and answers.held == 90


def test_replicas_share_a_key_derived_from_the_store_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LATHE_FEEDBACK_KEY", raising=False)
    monkeypatch.setenv("LATHE_STORE_SECRET_KEY", "store-secret")
    one, two = configured_key("ml", "digits"), configured_key("ml", "digits")
    assert one == two and one != configured_key("ml", "other") and one != configured_key("team-b", "digits")
    monkeypatch.setenv("LATHE_FEEDBACK_KEY", "given")
    assert configured_key("ml", "digits") == b"given"


def test_pending_log_is_capped_by_bytes_per_row_and_the_loss_counted(run_service: RunService) -> None:
    sink = LogSink(lambda key, data: None, "ml", "digits", max_bytes=20_000)

    async def work(served: Service) -> float:
        served.deployment.settings.sample_rate = 1.0
        outputs, _ = await served.predict(served.deployment.route(), ROWS[:2], "r0")
        for i in range(1, 20):
            await served.predict(served.deployment.route(), ROWS[:2], f"r{i}")
        served.feedback("r0", served.deployment.route().labels(outputs))
        found = served.metrics.registry.get_sample_value(
            "lathe_model_log_records_dropped_total", {"namespace": "", "deployment": ""}
        )
        return found or 0.0

    dropped = run_service(work, sink)
    assert 20_000 - 3_000 <= sink.held <= 20_000  # a record of 64 features and 10 classes holds ~2.8 kB
    assert dropped == 2 * 20 + 2 - len(sink.records) and len(sink.records) < 40

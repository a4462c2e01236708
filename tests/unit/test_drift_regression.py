"""A regressor under a DriftMonitor: its predicted values drift against the test split's, and feedback gives a
live mean absolute error instead of an accuracy."""

from __future__ import annotations

import numpy as np

from lathe_pipelines.drift import run
from lathe_pipelines.drift.window import Window
from lathe_pipelines.steps.profile import LEVELS, numeric
from lathe_serving.model import value_label


def card(values: np.ndarray) -> dict:
    reference = {"quantileLevels": LEVELS.tolist(), **numeric(values)}
    return {"task": "regression", "reference": {"predictions": {}, "values": reference}}


def window(values: np.ndarray, truth: list[float] | None = None) -> Window:
    labels = np.asarray([value_label(v) for v in values], dtype=str)
    given = np.asarray([value_label(v) for v in truth or []], dtype=str)
    return Window({}, labels, given, labels[: len(given)], len(labels))


def test_predicted_values_drift_when_they_shift_and_not_when_they_do_not() -> None:
    rng = np.random.default_rng(0)
    reference = card(rng.normal(150, 40, 2000))
    same = run._prediction_drift(reference, window(rng.normal(150, 40, 1000)))
    shifted = run._prediction_drift(reference, window(rng.normal(190, 40, 1000)))
    assert same is not None and shifted is not None
    assert same["test"] == "wasserstein" and not same["drifted"] and shifted["drifted"]
    assert run._prediction_drift({"task": "regression", "reference": {"predictions": {}}}, window(np.ones(5))) is None


def test_live_error_of_a_regressor_is_its_mean_absolute_error() -> None:
    answered = np.array([100.0, 150.0, 200.0])
    found = window(answered, truth=[110.0, 150.0, 170.0])
    assert abs(found.mean_absolute_error - 40 / 3) < 1e-4
    assert Window().mean_absolute_error is None

"""The prepare step reads a version in batches and writes the split that ``split.split`` makes from the whole frame."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lathe_pipelines.sample_data import diabetes, digits, rides
from lathe_pipelines.steps import classifier, prepare, splitfile
from lathe_pipelines.steps import encoding as encodings
from lathe_pipelines.steps.split import split


def _prepared(frame: pd.DataFrame, target: str, tmp_path: Path, task: str = "classification") -> tuple[dict, Path]:
    source = tmp_path / "data.parquet"
    frame.to_parquet(source, row_group_size=700)  # several row groups, batches across their edges
    out = tmp_path / "splits.npz"
    return json.loads(prepare.prepare(source, target, 11, out, task)), out


def _rides_with_gaps() -> pd.DataFrame:
    frame = rides(2500)
    frame.loc[::37, "city"] = None  # missing text: no category
    return frame


@pytest.mark.parametrize(
    ("frame", "target", "task"),
    [
        (digits(), "label", "classification"),
        (_rides_with_gaps(), "late", "classification"),
        (diabetes(), "progression", "regression"),
    ],
    ids=["numeric", "categorical", "regression"],
)
def test_batched_prepare_writes_the_whole_frame_split(
    frame: pd.DataFrame, target: str, task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "BATCH_ROWS", 300)  # many batches, none aligned with a row group
    summary, out = _prepared(frame, target, tmp_path, task)
    whole = split(frame, target, 11, task=task)
    data = splitfile.load(out)
    for part in ("train", "val", "test"):
        assert isinstance(data[f"x_{part}"], np.memmap)
        assert np.array_equal(data[f"x_{part}"], getattr(whole, f"x_{part}"), equal_nan=True)
        assert np.array_equal(data[f"y_{part}"], getattr(whole, f"y_{part}"))
        assert summary[part] == len(getattr(whole, f"y_{part}"))
    assert encodings.load(data) == (whole.encoding if whole.encoding.categorical else None)
    assert summary["features"] == whole.features and summary["classes"] == whole.classes
    assert summary["rows"] == len(frame)
    with np.load(out) as plain:  # and it is an npz like any other
        assert np.array_equal(plain["x_test"], whole.x_test, equal_nan=True)


def test_categories_count_only_training_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "BATCH_ROWS", 97)
    frame = _rides_with_gaps()
    summary, _ = _prepared(frame, "late", tmp_path)
    whole = split(frame, "late", 11)
    assert summary["categories"] == whole.encoding.categories and summary["categorical"]


def test_bad_target_and_nothing_to_train_on_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="target column 'nope'"):
        _prepared(digits(), "nope", tmp_path)
    with pytest.raises(ValueError, match="no numeric or text column besides the target"):
        _prepared(pd.DataFrame({"label": ["a", "b"] * 20}), "label", tmp_path)


def test_split_file_maps_large_arrays_and_reads_small_ones(tmp_path: Path) -> None:
    x = np.arange(12, dtype="float32").reshape(4, 3)
    np.save(tmp_path / "x.npy", x)
    splitfile.write(tmp_path / "s.npz", {"x": tmp_path / "x.npy", "y": np.array([1, 2]), "s": np.asarray("text")})
    data = splitfile.load(tmp_path / "s.npz")
    assert data.files == ["x", "y", "s"] and "x" in data
    assert isinstance(data["x"], np.memmap) and np.array_equal(data["x"], x)
    assert data["y"].tolist() == [1, 2] and str(data["s"]) == "text"


def test_a_compressed_npz_is_refused(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "c.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="compressed"):
        splitfile.load(tmp_path / "c.npz")


def test_moments_in_chunks_match_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(3).normal(5, 2, (1000, 4)).astype("float32")
    x[::7, 1] = np.nan
    x[:, 3] = np.nan  # a column with no value at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's, for that column ("Mean of empty slice")
        expected = classifier.moments(x)
    monkeypatch.setattr(classifier, "IN_MEMORY", 0)
    monkeypatch.setattr(classifier, "CHUNK_ROWS", 128)
    mean, std = classifier.moments(x)
    assert np.allclose(mean, expected[0], rtol=1e-6, equal_nan=True)
    assert np.allclose(std, expected[1], rtol=1e-5, equal_nan=True)


def test_a_split_past_memory_trains_minibatch_by_minibatch_from_the_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rows in the same order as from a copy in memory: the same model, but for rounding."""
    _, out = _prepared(digits(), "label", tmp_path)
    data = splitfile.load(out)
    args = (data["x_train"], data["y_train"], data["x_val"], data["y_val"], 10, "mlp", {"epochs": 2}, 3)
    whole = classifier.train(*args, device="cpu")
    monkeypatch.setattr(classifier, "IN_MEMORY", 0)
    monkeypatch.setattr(classifier, "CHUNK_ROWS", 100)
    mapped = classifier.train(*args, device="cpu")
    for a, b in zip(whole.history, mapped.history):
        assert a["trainLoss"] == pytest.approx(b["trainLoss"], rel=1e-4)
        assert a["valAccuracy"] == pytest.approx(b["valAccuracy"], abs=1e-3)
    test = np.asarray(data["x_test"])
    with torch.no_grad():
        assert np.allclose(whole.model(torch.tensor(test)), mapped.model(torch.tensor(test)), atol=1e-3)

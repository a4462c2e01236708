"""Drift statistics against scipy on fixed data, and profile-based values against full-data values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial import distance

from lathe_pipelines.drift import statistics
from lathe_pipelines.drift.check import StatTest, check
from lathe_pipelines.drift.reference import Categorical, Numeric, ProfileUnsupported, columns
from lathe_pipelines.drift.window import from_logs, read_columns
from lathe_pipelines.steps.profile import profile

RNG = np.random.default_rng(7)


def full_wasserstein(ref: np.ndarray, cur: np.ndarray) -> float:
    return float(stats.wasserstein_distance(ref, cur) / np.std(ref))


def reference_from_profile(values: np.ndarray) -> Numeric:
    frame = pd.DataFrame({"x": values})
    ref = columns(profile(frame, [{"name": "x", "type": "float"}], None))["x"]
    assert isinstance(ref, Numeric)
    return ref


DATA = {  # name -> (reference, current): continuous, shifted, spread, heavy-tailed, discrete, point mass
    "normal": (RNG.normal(0, 1, 50_000), RNG.normal(0, 1, 40_000)),
    "shifted": (RNG.normal(0, 1, 50_000), RNG.normal(0.3, 1, 40_000)),
    "spread": (RNG.normal(5, 2, 50_000), RNG.normal(5, 3, 40_000)),
    "lognormal": (RNG.lognormal(0, 1, 50_000), RNG.lognormal(0.1, 1, 40_000)),
    "pixels": (RNG.binomial(16, 0.3, 50_000).astype(float), RNG.binomial(16, 0.25, 40_000).astype(float)),
    "zeros": (
        np.where(RNG.random(50_000) < 0.6, 0.0, RNG.normal(8, 3, 50_000)),
        np.where(RNG.random(40_000) < 0.5, 0.0, RNG.normal(8, 3, 40_000)),
    ),
}


@pytest.mark.parametrize("name", sorted(DATA))
def test_profile_based_statistics_agree_with_full_data(name: str) -> None:
    """KS within 0.01 absolute; normalised Wasserstein within 2% relative or 0.002 absolute."""
    ref_values, cur = DATA[name]
    ref = reference_from_profile(ref_values)
    full_ks = stats.ks_2samp(ref_values, cur).statistic
    assert abs(statistics.ks(ref, cur).statistic - full_ks) <= 0.01
    full_w = full_wasserstein(ref_values, cur)
    ours = statistics.wasserstein(ref, cur).statistic
    assert abs(ours - full_w) <= max(0.02 * full_w, 0.002), (ours, full_w)


def test_ks_against_scipy_on_a_small_fixed_sample() -> None:
    ref_values = np.array([0.1, 0.4, 0.4, 0.7, 1.3, 2.0, 2.2, 3.1])
    cur = np.array([0.5, 0.9, 1.4, 2.5, 2.6, 3.3, 3.9])
    ref = Numeric.of(ref_values, np.linspace(0, 1, ref_values.size))
    ours = statistics.ks(ref, cur)
    # With every reference value as a quantile, the profile's CDF interpolates the ECDF: within one step of it.
    assert abs(ours.statistic - stats.ks_2samp(ref_values, cur).statistic) <= 1 / (ref_values.size - 1)
    assert ours.p_value == pytest.approx(stats.kstwo.sf(ours.statistic, round(8 * 7 / 15)))


def test_wasserstein_integrates_the_quantile_functions_exactly() -> None:
    """Against scipy on samples of the very distributions compared: the profile's piecewise-linear one."""
    levels, points, n = np.array([0.0, 0.5, 1.0]), np.array([0.0, 2.0, 10.0]), 10**6
    dense = np.interp((np.arange(400_000) + 0.5) / 400_000, levels, points)
    ref = Numeric(levels, points, n, float(dense.mean()), float(np.std(dense)) * np.sqrt(n / (n - 1)))
    cur = np.array([1.0, 3.0, 4.0, 9.0])
    ours = statistics.wasserstein(ref, cur).statistic * np.std(dense)  # undo the normalisation
    w1 = stats.wasserstein_distance(dense, np.repeat(cur, 100_000))
    assert ours == pytest.approx(w1, rel=1e-4)


def test_psi_and_jensenshannon_against_a_direct_computation() -> None:
    ref_values, cur = DATA["shifted"]
    ref = Numeric.of(ref_values)
    edges = np.unique(np.quantile(ref_values, np.linspace(0, 1, statistics.BINS + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, ref_values), minlength=edges.size + 1) / ref_values.size
    o = np.bincount(np.searchsorted(edges, cur), minlength=edges.size + 1) / cur.size
    assert statistics.psi(ref, cur).statistic == pytest.approx(float(np.sum((o - e) * np.log(o / e))), rel=0.01)
    assert statistics.jensenshannon(ref, cur).statistic == pytest.approx(float(distance.jensenshannon(e, o)), rel=0.01)


def test_empty_bins_follow_evidentlys_fill_rule() -> None:
    """Each side's empty bins: a millionth of its smallest share when that is at most 1e-4, else 1e-4."""
    ref = Categorical({"a": 999_999, "b": 1})  # smallest share 1e-6: its empty "c" becomes 1e-12
    cur = np.array(["a"] * 5 + ["c"] * 5)  # smallest share 0.5: its empty "b" becomes 1e-4
    e = np.array([0.999999, 1e-6, 1e-12])
    o = np.array([0.5, 1e-4, 0.5])
    assert statistics.psi(ref, cur).statistic == pytest.approx(float(np.sum((o - e) * np.log(o / e))))


def test_categorical_tests_against_scipy() -> None:
    ref = Categorical({"a": 500, "b": 300, "c": 200})
    cur = np.array(["a"] * 400 + ["b"] * 400 + ["c"] * 200)
    chi = statistics.chisquare(ref, cur)
    expected = stats.chisquare([400, 400, 200], [500, 300, 200])
    assert chi.statistic == pytest.approx(expected.statistic) and chi.p_value == pytest.approx(expected.pvalue)
    z = statistics.ztest(Categorical({"yes": 700, "no": 300}), np.array(["yes"] * 600 + ["no"] * 400))
    pooled = (300 + 400) / 2000  # "no" comes first in the sorted union
    expected_z = (0.4 - 0.3) / np.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert z.statistic == pytest.approx(abs(expected_z)) and z.p_value == pytest.approx(
        2 * stats.norm.sf(abs(expected_z))
    )
    share = statistics.share_change(ref, cur)
    assert share.statistic == pytest.approx(0.1) and share.drifted
    assert not statistics.share_change(ref, np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2)).drifted  # no evidence


def test_unseen_categories_weigh_heavily_instead_of_crashing() -> None:
    ref = Categorical({"a": 900, "b": 100})
    cur = np.array(["a"] * 800 + ["new"] * 200)
    assert statistics.chisquare(ref, cur).drifted and statistics.psi(ref, cur).statistic > 1


def test_check_reports_every_edge_case_per_column() -> None:
    frame = pd.DataFrame(
        {
            "x": RNG.normal(0, 1, 2000),
            "flat": np.full(2000, 3.0),
            "gone": RNG.normal(0, 1, 2000),
            "colour": RNG.choice(["red", "blue"], 2000),
        }
    )
    schema = [
        {"name": "x", "type": "float"},
        {"name": "flat", "type": "float"},
        {"name": "gone", "type": "float"},
        {"name": "colour", "type": "string"},
    ]
    reference = profile(frame, schema, None)
    current = {
        "x": np.concatenate([RNG.normal(0, 1, 990), [np.nan] * 5, [np.inf] * 5]),
        "flat": np.full(1000, 3.0),
        "colour": ["green"] * 1000,
        "extra": [1.0] * 1000,
    }
    result = check(reference, current)
    found = {c.name: c for c in result.columns}
    assert (
        found["x"].status == "Checked"
        and not found["x"].drifted
        and (found["x"].missing, found["x"].infinite) == (5, 5)
    )
    assert found["flat"].statistic == 0 and not found["flat"].drifted  # constant and unchanged
    assert found["gone"].status == "MissingInCurrent" and found["extra"].status == "MissingInReference"
    assert found["colour"].drifted and result.share == pytest.approx(1 / 3)
    empty = check(reference, {"x": [np.nan] * 10})
    assert {c.name: c.status for c in empty.columns}["x"] == "NoData" and not empty.drifted


def test_constant_reference_flags_any_move() -> None:
    flat = Numeric.of(np.full(100, 2.0))
    moved = statistics.wasserstein(flat, np.full(50, 2.5))
    assert moved.drifted and moved.statistic == pytest.approx(0.5 / statistics.MIN_STD)
    assert statistics.ks(flat, np.full(50, 2.5)).drifted


def test_overrides_corrections_and_bad_choices() -> None:
    frame = pd.DataFrame({f"c{i}": RNG.normal(0, 1, 5000) for i in range(20)})
    reference = profile(frame, [{"name": f"c{i}", "type": "float"} for i in range(20)], None)
    current = {f"c{i}": RNG.normal(0, 1, 5000) for i in range(20)}
    plain = check(reference, current, per_kind={"numeric": StatTest("ks", 0.05)})
    corrected = check(reference, current, per_kind={"numeric": StatTest("ks", 0.05)}, correction="fdr")
    assert sum(c.drifted for c in corrected.columns) <= sum(c.drifted for c in plain.columns)
    assert all(c.test == "ks" for c in plain.columns)
    one = check(reference, current, per_column={"c0": StatTest("psi", 0.1)})
    assert {c.name: c.test for c in one.columns}["c0"] == "psi"
    with pytest.raises(ValueError, match="does not apply to numeric"):
        check(reference, current, per_column={"c0": StatTest("chisquare", 0.05)})


def test_an_older_profile_is_refused_with_a_reason() -> None:
    with pytest.raises(ProfileUnsupported, match="format 1"):
        columns({"columns": {"x": {"kind": "numeric", "binEdges": [0, 1]}}})


def test_categories_beyond_the_profiles_top_ones_compare_with_its_other_bucket() -> None:
    values = np.array([f"c{i}" for i in RNG.integers(0, 3000, 60_000)])
    reference = profile(pd.DataFrame({"id": values}), [{"name": "id", "type": "string"}], None)
    current = np.array([f"c{i}" for i in RNG.integers(0, 3000, 20_000)])
    found = check(reference, {"id": current}).columns[0]
    assert found.status == "Checked" and not found.drifted and found.statistic < 0.05


def test_missing_categories_and_numbers_are_counted_not_a_crash() -> None:
    reference = profile(
        pd.DataFrame({"colour": ["red", "blue"] * 500, "x": RNG.normal(0, 1, 1000)}),
        [{"name": "colour", "type": "string"}, {"name": "x", "type": "float"}],
        None,
    )
    present = ["red", "blue"] * 200
    current = {
        "colour": present + [None, np.nan, pd.NA, pd.NaT],
        "x": np.asarray(list(RNG.normal(0, 1, 400)) + [None, pd.NA, np.inf], dtype=object),
    }
    found = {c.name: c for c in check(reference, current).columns}
    clean = {c.name: c for c in check(reference, {"colour": present, "x": current["x"][:400]}).columns}
    assert (found["colour"].samples, found["colour"].missing) == (400, 4)
    assert found["colour"].statistic == clean["colour"].statistic
    assert (found["x"].samples, found["x"].missing, found["x"].infinite) == (400, 2, 1)
    assert found["x"].statistic == clean["x"].statistic


def test_dataset_columns_are_read_as_float64_one_column_at_a_time(tmp_path: Path) -> None:
    table = pa.table(
        {
            "x": pa.array([0.5, None, 2.5, 3.5, 4.5]),
            "n": pa.array([1, 2, None, 4, 5]),
            "whole": pa.array([1, 2, 3, 4, 5], pa.int32()),
            "label": pa.array(["a", None, "b", "a", "c"]),
        }
    )
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=2)  # three chunks a column
    columns, rows = read_columns(tmp_path / "data.parquet")
    assert rows == 5 and list(columns) == ["x", "n", "whole", "label"]
    assert all(columns[n].dtype == np.float64 for n in ("x", "n", "whole"))
    np.testing.assert_array_equal(columns["x"], [0.5, np.nan, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(columns["n"], [1, 2, np.nan, 4, 5])
    assert columns["label"].tolist() == ["a", None, "b", "a", "c"]
    pq.write_table(table.select(["x"]).slice(2), tmp_path / "one.parquet")
    values = read_columns(tmp_path / "one.parquet")[0]["x"]  # one chunk, no nulls: Arrow's buffer, not a copy
    assert values.dtype == np.float64 and not values.flags.owndata and values.tolist() == [2.5, 3.5, 4.5]


def test_ragged_feature_lists_are_padded_with_nan() -> None:
    rows = [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]]
    table = pa.table(
        {
            "kind": ["prediction"] * 3,
            "shadow": [False, None, False],
            "features": rows,
            "prediction": ["p", "q", "p"],
            "request_id": ["r1", "r1", "r2"],
            "truth": pa.array([None, None, None], pa.string()),
        }
    )
    found = from_logs(table, ["a", "b"])
    np.testing.assert_array_equal(found.columns["a"], [1.0, 3.0, 4.0])
    np.testing.assert_array_equal(found.columns["b"], [2.0, np.nan, 5.0])
    assert found.samples == 3 and found.unnamed == 1

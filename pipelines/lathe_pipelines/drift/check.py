"""One drift check: every column of the current data against the reference profile, and the verdict.

Columns are matched by name. A column the reference has but the current data lacks (or
the reverse), a column with no usable values, and a profile of another format are
reported per column, never a crash. Numeric values that are NaN count as missing, and
infinities are counted and left out; categorical values are compared as text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import statistics
from .reference import Categorical, Numeric, columns

NUMERIC_TESTS = {
    "ks": statistics.ks,
    "wasserstein": statistics.wasserstein,
    "psi": statistics.psi,
    "jensenshannon": statistics.jensenshannon,
}
CATEGORICAL_TESTS = {
    "chisquare": statistics.chisquare,
    "z": statistics.ztest,
    "psi": statistics.psi,
    "jensenshannon": statistics.jensenshannon,
    "share": statistics.share_change,
}
THRESHOLDS = {
    "ks": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "jensenshannon": 0.1,
    "chisquare": 0.05,
    "z": 0.05,
    "share": 0.05,
}
DEFAULTS = {"numeric": "wasserstein", "categorical": "share"}  # Lathe's defaults: see docs/drift.md
P_VALUE_TESTS = {"ks", "chisquare", "z"}


@dataclass(frozen=True)
class StatTest:
    name: str
    threshold: float


@dataclass(frozen=True)
class Column:
    """One column's outcome; ``status`` says why a column has no score."""

    name: str
    kind: str
    status: str  # Checked, MissingInCurrent, MissingInReference, NoData
    test: str = ""
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    drifted: bool = False
    samples: int = 0
    missing: int = 0
    infinite: int = 0


@dataclass
class Result:
    columns: list[Column] = field(default_factory=list)
    share: float = 0.0  # drifted among checked columns
    drifted: bool = False

    @property
    def checked(self) -> list[Column]:
        return [c for c in self.columns if c.status == "Checked"]


def choose(kind: str, name: str, per_column: Mapping[str, StatTest], per_kind: Mapping[str, StatTest]) -> StatTest:
    """The test for a column: its own override, then its kind's, then Lathe's default."""
    if name in per_column:
        return per_column[name]
    if kind in per_kind:
        return per_kind[kind]
    default = DEFAULTS[kind]
    return StatTest(default, THRESHOLDS[default])


def _score(ref: Numeric | Categorical, values: np.ndarray, test: StatTest) -> statistics.Score:
    table = NUMERIC_TESTS if isinstance(ref, Numeric) else CATEGORICAL_TESTS
    if test.name not in table:
        raise ValueError(
            f"test {test.name} does not apply to {'numeric' if isinstance(ref, Numeric) else 'categorical'} "
            f"columns; choose one of {', '.join(sorted(table))}"
        )
    return table[test.name](ref, values, test.threshold)  # type: ignore[arg-type]


def _categories(raw: Any) -> tuple[np.ndarray, int]:
    """Values as text, and how many were missing: None, NaN, pd.NA and NaT are missing, not a category."""
    values = raw if isinstance(raw, np.ndarray) else np.asarray(raw, dtype=object)
    missing = pd.isna(values)
    return statistics.texts(values[~missing]), int(missing.sum())


def _numbers(raw: Any) -> tuple[np.ndarray, int, int]:
    """Finite values, and how many were missing (NaN, None, pd.NA) and infinite.

    Float64 values all finite (the usual case) are used as they are, not copied."""
    values = np.asarray(raw)
    if values.dtype == object:
        values = np.where(pd.isna(values), np.nan, values)
    values = np.asarray(values, dtype="float64")
    finite = np.isfinite(values)
    if finite.all():
        return values, 0, 0
    missing = int(np.isnan(values).sum())
    return values[finite], missing, values.size - int(finite.sum()) - missing


def _column(name: str, ref: Numeric | Categorical | None, raw: Any, test: StatTest) -> Column:
    kind = "categorical" if isinstance(ref, Categorical) else "numeric"
    if isinstance(ref, Categorical):
        values, missing = _categories(raw)
        infinite = 0
    else:
        values, missing, infinite = _numbers(raw)
    if ref is None or values.size == 0:
        return Column(name, kind, "NoData", test.name, samples=0, missing=missing, infinite=infinite)
    score = _score(ref, values, test)
    return Column(
        name,
        kind,
        "Checked",
        score.test,
        score.statistic,
        score.p_value,
        score.threshold,
        score.drifted,
        int(values.size),
        missing,
        infinite,
    )


def correct(found: list[Column], method: str | None) -> list[Column]:
    """Multiple-testing correction of p-value tests: ``bonferroni`` or ``fdr`` (Benjamini-Hochberg)."""
    tested = [i for i, c in enumerate(found) if c.status == "Checked" and c.p_value is not None]
    if not method or not tested:
        return found
    p = np.array([found[i].p_value for i in tested], dtype="float64")
    if method == "bonferroni":
        adjusted = np.minimum(p * len(p), 1.0)
    elif method == "fdr":
        order = np.argsort(p)
        ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
        adjusted = np.empty_like(p)
        adjusted[order] = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    else:
        raise ValueError(f"correction must be bonferroni or fdr, not {method!r}")
    fixed = list(found)
    for i, q in zip(tested, adjusted):
        c = found[i]
        fixed[i] = Column(
            c.name,
            c.kind,
            c.status,
            c.test,
            c.statistic,
            float(q),
            c.threshold,
            bool(q <= (c.threshold or 0) if c.test == "ks" else q < (c.threshold or 0)),
            c.samples,
            c.missing,
            c.infinite,
        )
    return fixed


def check(
    profile: dict[str, Any],
    current: Mapping[str, Any],
    *,
    per_column: Mapping[str, StatTest] | None = None,
    per_kind: Mapping[str, StatTest] | None = None,
    drift_share: float = 0.5,
    correction: str | None = None,
) -> Result:
    """Every reference column against the current column of the same name (a sequence of values)."""
    reference = columns(profile)

    def one(name: str) -> Column:
        ref = reference[name]
        kind = "categorical" if isinstance(ref, Categorical) else "numeric"
        test = choose(kind, name, per_column or {}, per_kind or {})
        if name not in current:
            return Column(name, kind, "MissingInCurrent", test.name)
        return _column(name, ref, current[name], test)

    # Columns in threads: the sorts and searches release the GIL, so each core takes a column.
    with ThreadPoolExecutor(max_workers=max(1, min(len(reference), len(os.sched_getaffinity(0))))) as pool:
        found = list(pool.map(one, reference))
    found += [Column(name, "unknown", "MissingInReference") for name in current if name not in reference]
    found = correct(found, correction)
    checked = [c for c in found if c.status == "Checked"]
    share = sum(c.drifted for c in checked) / len(checked) if checked else 0.0
    return Result(found, share, bool(checked) and share >= drift_share)

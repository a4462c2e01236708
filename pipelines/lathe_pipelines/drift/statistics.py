"""The drift tests, each against a reference from the profile: definitions in docs/drift.md.

Every function takes the reference (``reference.Numeric`` or ``reference.Categorical``)
and the current values, and returns a ``Score``: the statistic, its p-value where the
test has one, and whether it crosses the threshold. Definitions follow Evidently's so
numbers can be compared; binned tests bin on the reference's own quantiles, which the
profile holds, instead of rereading the reference data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from ..steps.profile import OTHER
from .reference import Categorical, Numeric

EPSILON = 1e-4  # PSI: an empty bin's share (Evidently's rule, ``_filled``)
BINS = 20  # equal-mass reference bins for PSI and Jensen-Shannon on numeric columns
MIN_STD = 0.001  # Wasserstein: the reference's standard deviation is at least this (Evidently's floor)
MAX_CATEGORY = 1024  # characters of a category kept as it is; a longer one is counted by its hash


def texts(values: Any) -> np.ndarray:
    """Categorical values as text of variable width (objects, never a fixed-width array sized by the longest
    value): one 4 MB value costs its own 4 MB, not 4 MB for every row. A value longer than ``MAX_CATEGORY``
    characters is replaced by its hash, so a check and its report stay bounded however long it is."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_CATEGORY:
            text = "sha256:" + hashlib.sha256(text.encode(errors="replace")).hexdigest()[:16]
        out[i] = text
    return out


@dataclass(frozen=True)
class Score:
    test: str
    statistic: float
    p_value: float | None
    threshold: float

    @property
    def drifted(self) -> bool:
        """p-value tests drift below the threshold (KS at it too, as in Evidently), distances at or above it."""
        if self.p_value is not None:
            return self.p_value <= self.threshold if self.test == "ks" else self.p_value < self.threshold
        return self.statistic >= self.threshold


def ks(ref: Numeric, current: np.ndarray, threshold: float = 0.05) -> Score:
    """Two-sample Kolmogorov-Smirnov: sup |F_ref - F_cur|, exact against the profile's CDF.

    Both CDFs are checked at every current value and every reference quantile, from the left
    and the right: between those points one is flat and the other linear, so the supremum
    is at one of them. The p-value is scipy's asymptotic two-sample one."""
    cur = np.sort(current)
    points = np.concatenate((_distinct(cur), ref.quantiles))
    right = np.searchsorted(cur, points, side="right") / cur.size
    left = np.searchsorted(cur, points, side="left") / cur.size
    d = float(max(np.abs(right - ref.cdf(points)).max(), np.abs(left - ref.cdf(points, left=True)).max()))
    n, m = ref.count, cur.size
    p = float(stats.kstwo.sf(d, np.round(n * m / (n + m))))
    return Score("ks", d, p, threshold)


def wasserstein(ref: Numeric, current: np.ndarray, threshold: float = 0.1) -> Score:
    """Wasserstein-1 distance divided by the reference's standard deviation (population, ddof 0, at least MIN_STD).

    W1 is the area between the quantile functions: the reference's piecewise linear, the
    current's a step per value; integrated exactly piece by piece."""
    cur = np.sort(np.asarray(current, dtype="float64"))
    m = cur.size
    u = _merged(np.arange(m + 1) / m, ref.levels)
    lo, hi = u[:-1], u[1:]
    step = cur[np.minimum((((lo + hi) / 2) * m).astype(np.int64), m - 1)]
    q = ref.quantile(u)  # once for both ends of every piece
    a, b = q[:-1] - step, q[1:] - step
    w1 = float(np.sum(_area(a, b) * (hi - lo)))
    std = ref.std * np.sqrt((ref.count - 1) / ref.count) if ref.count > 1 else 0.0
    return Score("wasserstein", w1 / max(std, MIN_STD), None, threshold)


def _area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean |difference| over each piece, the difference going linearly from a to b.

    Where it changes sign (a few pieces only) the two triangles, else the trapezoid."""
    area = np.abs(a + b) / 2
    cross = ~(a * b >= 0)
    a, b = a[cross], b[cross]
    area[cross] = (a * a + b * b) / (2 * np.abs(b - a))
    return area


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (np.unique would sort it again)."""
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if ordered.size else ordered


def _merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted union of two sorted arrays in linear time (np.union1d sorts it all again)."""
    both = np.insert(a, np.searchsorted(a, b), b)
    return both[np.concatenate(([True], np.diff(both) > 0))]


def shares(ref: Numeric | Categorical, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reference and current shares over the same bins (numeric) or categories (the union)."""
    if isinstance(ref, Numeric):
        edges = ref.bin_edges(BINS)
        counts = np.bincount(np.searchsorted(edges, current, side="left"), minlength=edges.size + 1)
        labels = [f"<= {e:g}" for e in edges] + [f"> {edges[-1]:g}" if edges.size else "all"]
        return ref.bin_shares(edges), counts / max(counts.sum(), 1), labels
    counted = pd.Series(texts(current), dtype=object).value_counts(sort=False)
    seen: dict[str, int] = {}
    for value, count in zip(counted.index.tolist(), counted.tolist()):
        if OTHER in ref.counts and value not in ref.counts:  # the profile kept only the top categories
            value = OTHER
        seen[value] = seen.get(value, 0) + count
    labels = sorted(set(ref.counts) | set(seen))
    expected = np.array([ref.counts.get(c, 0) for c in labels], dtype="float64")
    observed = np.array([seen.get(c, 0) for c in labels], dtype="float64")
    return expected / max(expected.sum(), 1), observed / max(observed.sum(), 1), labels


def _filled(share: np.ndarray) -> np.ndarray:
    """Empty bins get EPSILON, or a millionth of the smallest share when that is smaller (Evidently's rule)."""
    smallest = share[share > 0].min() if (share > 0).any() else EPSILON
    return np.where(share == 0, smallest / 1e6 if smallest <= EPSILON else EPSILON, share)


def psi(ref: Numeric | Categorical, current: np.ndarray, threshold: float = 0.1) -> Score:
    """Population stability index: sum (cur - ref) * ln(cur / ref), empty bins filled by ``_filled``."""
    expected, observed, _ = shares(ref, current)
    e, o = _filled(expected), _filled(observed)
    return Score("psi", float(np.sum((o - e) * np.log(o / e))), None, threshold)


def jensenshannon(ref: Numeric | Categorical, current: np.ndarray, threshold: float = 0.1) -> Score:
    """Jensen-Shannon distance (scipy, natural log: at most ln 2 ** 0.5 = 0.83); empty bins stay empty."""
    expected, observed, _ = shares(ref, current)
    return Score("jensenshannon", float(distance.jensenshannon(expected, observed)), None, threshold)


def chisquare(ref: Categorical, current: np.ndarray, threshold: float = 0.05) -> Score:
    """Pearson's chi-square of current counts against the reference's shares scaled to the current size.

    A category the reference never saw has an expected count of 0: the statistic is
    infinite and p is 0, as in Evidently."""
    expected, observed, _ = shares(ref, current)
    return _chisquare(expected, observed, len(current), threshold)


def _chisquare(expected: np.ndarray, observed: np.ndarray, n: int, threshold: float) -> Score:
    if ((expected == 0) & (observed > 0)).any():
        return Score("chisquare", float("inf"), 0.0, threshold)
    seen = expected > 0
    statistic, p = stats.chisquare(observed[seen] * n, expected[seen] * n)
    return Score("chisquare", float(statistic), float(p), threshold)


def ztest(ref: Categorical, current: np.ndarray, threshold: float = 0.05) -> Score:
    """Two-proportion z-test (pooled, two-sided) on the share of the first value of the sorted union (Evidently's)."""
    text = texts(current)
    union = sorted(set(ref.counts) | set(text.tolist()))
    if len(union) <= 1:
        return Score("z", 0.0, 1.0, threshold)
    label = union[0]
    n1, n2 = ref.count, len(current)
    p1 = ref.counts.get(label, 0) / n1 if n1 else 0.0
    p2 = float(np.mean(text == label)) if n2 else 0.0
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2) if n1 + n2 else 0.0
    spread = np.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n2, 1)))
    z = (p2 - p1) / spread if spread > 0 else 0.0
    return Score("z", float(abs(z)), float(2 * stats.norm.sf(abs(z))), threshold)


def share_change(ref: Categorical, current: np.ndarray, threshold: float = 0.05, alpha: float = 0.05) -> Score:
    """Lathe's categorical default: the largest change of one category's share, counted only when
    chi-square also rejects (p < ``alpha``): large enough to matter, and not noise.

    The profile's bucket of rarer categories is left out: it holds whatever the reference's
    top categories were not, and the top ones were picked for being frequent in that very
    sample, so the bucket's share grows in any fresh sample."""
    expected, observed, labels = shares(ref, current)
    named = np.array([label != OTHER for label in labels], dtype=bool)
    change = float(np.abs(observed - expected)[named].max()) if named.any() else 0.0
    significant = _chisquare(expected, observed, len(current), alpha).drifted  # on the same shares: binned once
    return Score("share", change if significant else 0.0, None, threshold)

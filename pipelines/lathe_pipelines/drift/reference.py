"""Reference distributions rebuilt from a stored profile (never from the data itself).

A numeric column's distribution is the piecewise-linear CDF through its profile
quantiles at the profile's levels (every 1/1000, denser in the tails): a flat stretch of
equal quantiles is a point mass (a jump of the CDF), so discrete columns (pixel
intensities, counts) are exact up to the spacing of the levels. A categorical column's distribution is its category counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT = 2


class ProfileUnsupported(ValueError):
    """The profile predates format 2 (or is not a profile): recompute it by ingesting again."""

    reason = "ProfileOutdated"


@dataclass(frozen=True)
class Numeric:
    levels: np.ndarray  # u, increasing from 0 to 1
    quantiles: np.ndarray  # Q(u) at each level
    count: int
    mean: float
    std: float

    @classmethod
    def of(cls, values: np.ndarray, levels: np.ndarray | None = None) -> Numeric:
        """The reference a profile would hold, from values (tests and benchmarks; default: every 1/1000)."""
        finite = np.sort(np.asarray(values, dtype="float64")[np.isfinite(values)])
        u = np.linspace(0.0, 1.0, 1001) if levels is None else np.asarray(levels, dtype="float64")
        std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
        return cls(u, np.quantile(finite, u), int(finite.size), float(finite.mean()), std)

    def cdf(self, x: np.ndarray, *, left: bool = False) -> np.ndarray:
        """F(x), or F(x-) with ``left``: linear between quantiles, jumping across runs of equal ones."""
        q, u = self.quantiles, self.levels
        x = np.asarray(x, dtype="float64")
        index = np.searchsorted(q, x, side="left" if left else "right")  # quantile points below (or at) x
        inside = (index > 0) & (index < q.size)
        lo = np.clip(index - 1, 0, q.size - 1)
        hi = np.clip(index, 0, q.size - 1)
        width = q[hi] - q[lo]
        frac = np.where(inside & (width > 0), (x - q[lo]) / np.where(width > 0, width, 1.0), 0.0)
        value = u[lo] + frac * (u[hi] - u[lo])
        return np.where(index == 0, 0.0, np.where(index >= q.size, 1.0, value))

    def quantile(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.levels, self.quantiles)

    def bin_edges(self, bins: int) -> np.ndarray:
        """Interior edges of ``bins`` equal-mass bins (fewer where point masses merge them)."""
        return np.unique(self.quantile(np.linspace(0, 1, bins + 1)[1:-1]))

    def bin_shares(self, edges: np.ndarray) -> np.ndarray:
        """Share of the reference in each bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
        return np.diff(np.concatenate(([0.0], self.cdf(edges), [1.0])))


@dataclass(frozen=True)
class Categorical:
    counts: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.counts.values())


def column(profile: dict[str, Any], levels: np.ndarray) -> Numeric | Categorical | None:
    """One column of a format-2 profile; None when the column has no values at all."""
    if profile.get("kind") == "categorical":
        return Categorical({str(k): int(v) for k, v in profile.get("frequencies", {}).items()})
    if not profile.get("count"):
        return None
    return Numeric(
        levels,
        np.asarray(profile["quantiles"], dtype="float64"),
        int(profile["count"]),
        float(profile["mean"]),
        float(profile["std"]),
    )


def columns(profile: dict[str, Any]) -> dict[str, Numeric | Categorical | None]:
    if profile.get("format") != FORMAT:
        found = profile.get("format", 1)
        raise ProfileUnsupported(
            f"the reference profile has format {found}; drift needs format {FORMAT} "
            "(ingest the Dataset again to recompute it)"
        )
    levels = np.asarray(profile["quantileLevels"], dtype="float64")
    return {name: column(body, levels) for name, body in profile["columns"].items()}

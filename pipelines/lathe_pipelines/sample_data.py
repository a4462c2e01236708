"""Small datasets for examples, tests and the demo: real ones from scikit-learn's bundled files (no download),
and one seeded synthetic set with text (categorical) columns, which scikit-learn does not bundle.

python -m lathe_pipelines.sample_data digits|diabetes|rides out.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def digits() -> pd.DataFrame:
    """The 1,797 8x8 handwritten digits: pixel_<row>_<col> in 0-16, and label 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    columns = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    frame = pd.DataFrame(bunch.data.astype("int64"), columns=columns)
    frame["label"] = bunch.target.astype("int64")
    return frame


def diabetes() -> pd.DataFrame:
    """442 diabetes patients: ten baseline measurements (age, sex, bmi, bp, s1-s6; centred and scaled by
    scikit-learn) and progression, a regression target (25-346)."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    frame = pd.DataFrame(bunch.data, columns=list(bunch.feature_names))
    frame["progression"] = bunch.target.astype("float64")
    return frame


def rides(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Synthetic taxi rides (seeded): city and vehicle (text), distance_km and hour, and whether the ride was
    late. Lateness follows a logistic rule: rush hours, long rides, some cities and vehicles make it likelier."""
    import numpy as np

    rng = np.random.default_rng(seed)
    city = rng.choice(["oslo", "lima", "pune", "accra", "quito"], rows, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    vehicle = rng.choice(["sedan", "van", "bike"], rows, p=[0.5, 0.3, 0.2])
    distance = rng.gamma(2.0, 3.0, rows).round(2)
    hour = rng.integers(0, 24, rows)
    effect = (
        pd.Series(city).map({"oslo": -1.0, "lima": 1.2, "pune": 0.8, "accra": 0.0, "quito": -0.5}).to_numpy(copy=True)
    )
    effect += pd.Series(vehicle).map({"sedan": 0.0, "van": 0.7, "bike": -1.3}).to_numpy()
    rush = np.isin(hour, [7, 8, 9, 16, 17, 18]) * 1.5
    score = effect + rush + 0.15 * (distance - 6) + rng.normal(0, 0.5, rows)
    frame = pd.DataFrame({"city": city, "vehicle": vehicle, "distance_km": distance, "hour": hour})
    frame["late"] = np.where(score > 0.5, "late", "on-time")
    return frame


SETS = {"digits": digits, "diabetes": diabetes, "rides": rides}


def main(argv: list[str]) -> int:
    name, out = argv
    if name not in SETS:
        raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(SETS)}")
    SETS[name]().to_csv(Path(out), index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

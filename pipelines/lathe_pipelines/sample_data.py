"""Small real datasets for examples, tests and the demo, from scikit-learn's bundled files (no download).

python -m lathe_pipelines.sample_data digits|diabetes out.csv
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


SETS = {"digits": digits, "diabetes": diabetes}


def main(argv: list[str]) -> int:
    name, out = argv
    if name not in SETS:
        raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(SETS)}")
    SETS[name]().to_csv(Path(out), index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Step: fetch a Dataset version's data.parquet from the store and write the seeded split."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq

from lathe_core.datasets import DatasetVersions
from lathe_core.stores import open_configured_store

from .encoding import save
from .split import split


def run(
    namespace: str, dataset: str, version: str, target: str, seed: int, out_path: str, task: str = "classification"
) -> str:
    versions = DatasetVersions(open_configured_store(), namespace, dataset)
    # No Arrow thread pool in this short-lived step: its teardown at interpreter exit has aborted
    # the process ("terminate called without an active exception") after the work was done.
    data = versions.data(version)
    frame = pq.read_table(io.BytesIO(data), use_threads=False).to_pandas(use_threads=False)
    parts = split(frame, target, seed, task=task)
    with open(out_path, "wb") as out:
        np.savez(
            out,
            x_train=parts.x_train,
            y_train=parts.y_train,
            x_val=parts.x_val,
            y_val=parts.y_val,
            x_test=parts.x_test,
            y_test=parts.y_test,
            encoding=save(parts.encoding),
        )
    return json.dumps(
        {
            "features": parts.features,
            **parts.encoding.card(),
            "classes": parts.classes,
            "target": target,
            "task": task,
            "rows": len(frame),
            "train": len(parts.y_train),
            "val": len(parts.y_val),
            "test": len(parts.y_test),
        }
    )

"""A retrain's data (``lathe harvest``): the labelled requests a deployment served, merged with the training data.

Each served row whose ground truth came back as feedback (joined by request id and row,
as live accuracy is) becomes a training row: the logged features under the model card's
feature names and the truth as the target, cast to the training data's column types.
``append`` puts these rows after the rows the served model was trained on (its card's
Dataset version); ``replace`` keeps them alone. The result is one Parquet file in the
store, which the monitor publishes as a Dataset version: that Dataset's expectations
validate it like any other.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store import ObjectNotFound, ObjectStore

from .window import _matrix as matrix
from .window import _ranked as ranked
from .window import read_logs


class HarvestFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def labelled(table: pa.Table | None, features: int, categorical: int = 0) -> tuple[np.ndarray, list[str]]:
    """(features of each served row with ground truth, that truth), in feedback order. With ``categorical``
    columns, each row's logged text follows its numbers (an object array; no value is None)."""
    if table is None or table.num_rows == 0:
        return np.empty((0, features + categorical)), []
    kind, shadow = table.column("kind"), pc.fill_null(table.column("shadow"), False)
    served = table.filter(pc.and_(pc.equal(kind, "prediction"), pc.invert(shadow)))
    feedback = table.filter(pc.equal(kind, "feedback"))
    rows = {key: i for i, key in enumerate(ranked(served.column("request_id").to_pylist()))}
    picked, truth = [], []
    for key, value in zip(ranked(feedback.column("request_id").to_pylist()), feedback.column("truth").to_pylist()):
        if key in rows and value is not None:
            picked.append(rows[key])
            truth.append(str(value))
    values = matrix(served.column("features"))
    if values.shape[1] < features:
        raise HarvestFailed("FeaturesMissing", f"logged rows have {values.shape[1]} features, the model {features}")
    if not categorical:
        return values[picked, :features], truth
    texts = served.column("categories").to_pylist() if "categories" in served.column_names else []
    rows = np.empty((len(picked), features + categorical), dtype=object)
    rows[:, :features] = values[picked, :features]
    for i, row in enumerate(picked):
        logged = texts[row] if row < len(texts) and texts[row] else []
        rows[i, features:] = [(logged[j] or None) if j < len(logged) else None for j in range(categorical)]
    return rows, truth


def _column(values: pa.Array, like: pa.DataType) -> pa.Array:
    """Values as the training data's type when that loses nothing (3.0 -> 3), else as they are."""
    try:
        return values.cast(like, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return values


def traffic_table(base: pa.Schema, names: list[str], target: str, rows: np.ndarray, truth: list[str]) -> pa.Table:
    """The labelled traffic with the training data's columns: features, the target, nulls for the rest."""
    given = {
        name: pa.array(rows[:, i].tolist() if rows.dtype == object else rows[:, i]) for i, name in enumerate(names)
    }
    given[target] = pa.array(truth, pa.string())
    columns = {}
    for field in base:
        found = given.get(field.name)
        columns[field.name] = pa.nulls(len(truth), field.type) if found is None else _column(found, field.type)
    return pa.table(columns)


def _merge(base: pa.Table, traffic: pa.Table) -> pa.Table:
    """Both tables' rows; a column whose traffic could not take the training type takes the traffic's."""
    for field in traffic.schema:
        if field.type != base.schema.field(field.name).type:
            index = base.schema.get_field_index(field.name)
            base = base.set_column(index, field.name, base.column(field.name).cast(field.type))
    return pa.concat_tables([base, traffic])


def run(store: ObjectStore, request: dict[str, Any]) -> dict[str, Any]:
    """Write the retrain's data and return the report; the caller writes the report too."""
    namespace, model = request["namespace"], request["model"]
    try:
        card = ModelRegistry(store, namespace, model["name"]).card(int(model["version"]))
    except ObjectNotFound:
        return _failed("ModelNotFound", f"model {model['name']} version {model['version']} is not registered")
    columns, lineage = card.get("columns") or {}, card.get("dataset") or {}
    names, target = list(columns.get("features") or []), columns.get("target")
    if not names or not target or not lineage.get("version"):
        return _failed("LineageMissing", "the model card names no features, target or training Dataset version")
    start, end = (datetime.fromisoformat(request["window"][k]) for k in ("start", "end"))
    try:
        logs = read_logs(store, namespace, request["deployment"], start, end)
        rows, truth = labelled(logs, len(names), len(columns.get("categorical") or []))
        names += list(columns.get("categorical") or [])
        base = pq.read_table(io.BytesIO(DatasetVersions(store, namespace, lineage["name"]).data(lineage["version"])))
    except HarvestFailed as error:
        return _failed(error.reason, str(error))
    except ObjectNotFound:
        return _failed("ReferenceMissing", f"Dataset {lineage['name']} version {lineage['version']} is not stored")
    minimum = int(request.get("minLabelled", 1))
    if len(truth) < minimum:
        return _failed("InsufficientLabels", f"{len(truth)} labelled requests in the window, fewer than {minimum}")
    traffic = traffic_table(base.schema, names, target, rows, truth)
    merged = _merge(base, traffic) if request.get("merge", "append") == "append" else traffic
    sink = io.BytesIO()
    pq.write_table(merged, sink)
    key = layout.retrain_data(namespace, request["monitor"], request["run"])
    store.put(key, sink.getvalue())
    kept = base.num_rows if merged is not traffic else 0
    return {
        "outcome": "Succeeded",
        "reason": "Harvested",
        "message": f"{len(truth)} labelled requests and {kept} rows of {lineage['name']} {lineage['version'][:19]}",
        "uri": store.uri(key),
        "rows": merged.num_rows,
        "labelled": len(truth),
        "base": {"name": lineage["name"], "version": lineage["version"], "rows": kept},
    }


def _failed(reason: str, message: str) -> dict[str, Any]:
    return {"outcome": "Failed", "reason": reason, "message": message}

"""A retrain's data (``lathe harvest``): the labelled requests a deployment served, merged with the training data.

Each served row whose ground truth came back as feedback bound to the server's answer (joined
by the answer's tag and row, first truth wins, as live accuracy is: ``window.truths``) becomes a
training row; ``maxLabelled`` keeps the newest rows only, and ``maxSourceShare`` bounds the share
of the rows any one feedback source (client address) contributes (``capped``). Each row is the logged features under the model card's
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
import pyarrow.parquet as pq

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry
from lathe_core.store import ObjectNotFound, ObjectStore

from .window import _matrix as matrix
from .window import read_logs, served_and_truth, truths


class HarvestFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def labelled(
    table: pa.Table | None,
    features: int,
    categorical: int = 0,
    classes: list[str] | None = None,
    max_rows: int | None = None,
    max_share: float | None = None,
) -> tuple[np.ndarray, list[str]]:
    """(features of each served row with ground truth, that truth), in feedback order. With ``categorical``
    columns, each row's logged text follows its numbers (an object array; no value is None). ``classes``:
    a classifier's known classes (truth naming another is left out); then the caps of ``capped``."""
    if table is None or table.num_rows == 0:
        return np.empty((0, features + categorical)), []
    served, feedback = served_and_truth(table)
    found = [(row, value, source) for row, value, source in truths(served, feedback) if not classes or value in classes]
    found = capped(found, max_rows, max_share)
    picked, truth = [row for row, _, _ in found], [value for _, value, _ in found]
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


def capped(
    found: list[tuple[int, str, str]], max_rows: int | None, max_share: float | None
) -> list[tuple[int, str, str]]:
    """The newest ``max_rows`` labelled rows, then at most ``max_share`` of them from any one source: the largest
    per-source count ``c`` with c <= share x (rows kept when every source keeps at most c, its newest), so no
    source's share of the result exceeds the cap. One source alone with a share under 1 keeps nothing."""
    if max_rows is not None:
        found = found[-max_rows:] if max_rows > 0 else []
    if max_share is None or max_share >= 1 or not found:
        return found
    counts: dict[str, int] = {}
    for _, _, source in found:
        counts[source] = counts.get(source, 0) + 1

    def fits(c: int) -> bool:
        return c <= max_share * sum(min(n, c) for n in counts.values())

    low, high = 0, max(counts.values())  # c - share x kept(c) is convex and 0 at c = 0: the fitting c are 0..c*
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    kept: dict[str, int] = {}
    newest_first = []
    for item in reversed(found):
        if kept.get(item[2], 0) < low:
            kept[item[2]] = kept.get(item[2], 0) + 1
            newest_first.append(item)
    return newest_first[::-1]


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
        classes = None if card.get("task") == "regression" else [str(c) for c in columns.get("classes") or []]
        rows, truth = labelled(
            logs,
            len(names),
            len(columns.get("categorical") or []),
            classes=classes,
            max_rows=request.get("maxLabelled"),
            max_share=request.get("maxSourceShare"),
        )
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

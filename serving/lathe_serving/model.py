"""A registered ONNX model behind Seldon's duck-typed Python model contract.

``LatheModel`` has what ``seldon-core-microservice`` calls (``load``, ``predict``,
``health_status``, ``metrics``, ``init_metadata``) without importing seldon_core, so the
same class runs under Seldon Core and under Lathe's own server. Only numpy and
onnxruntime are needed. Bad input raises ``ModelError`` with an HTTP status and a reason
that the servers turn into a 4xx, never a 500.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

MAX_ROWS = 10_000
MAX_TEXT = 1024  # characters in one categorical value; a longer one is refused (400), never logged


VALUE = "value"  # a regressor's output column
INPUT, CATEGORIES = "input", "categories"  # the model's numeric and text inputs (pipelines' steps/encoding.py)


def value_label(value: float) -> str:
    """A regressor's answer as a label (logs, feedback): 7 significant digits, what float32 holds."""
    return f"{value:.7g}"


class ModelError(Exception):
    """Bad input or a model that may not be served; ``status_code`` and ``reason`` go to the client."""

    def __init__(self, reason: str, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.reason, self.message, self.status_code = reason, message, status_code

    def to_dict(self) -> dict[str, Any]:
        return {"status": {"code": self.status_code, "reason": self.reason, "info": self.message, "status": "FAILURE"}}


def _category(value: Any, column: str) -> str:
    """A categorical column's value as the model's text: strings as they are, whole numbers as digits, null as ""
    (which encodes as no category, like a category training never saw)."""
    if value is None or isinstance(value, str):
        if value and len(value) > MAX_TEXT:
            raise ModelError("TextTooLong", f"column {column}: a value of {len(value)} characters; at most {MAX_TEXT}")
        return value or ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError("InvalidInput", f"column {column} takes text; got {type(value).__name__} {str(value)[:40]}")
    return str(int(value)) if float(value).is_integer() else str(value)


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Threads for the cores this process may use; full graph optimisation; no per-call thread spinning."""
    options = ort.SessionOptions()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    options.intra_op_num_threads = threads or cores
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class LatheModel:
    """``model_dir`` holds model.onnx and model.json (the registry's files for one version)."""

    def __init__(self, model_dir: str = "/mnt/models", threads: int | None = None, sha256: str | None = None) -> None:
        """``sha256``: the checksum its TrainingRun recorded, which the bytes must match as well as the card's
        (a store writer could replace both files; the operator's record lives in the API server)."""
        self.model_dir = Path(model_dir)
        self.threads = int(threads) if threads else None
        self.sha256 = sha256 or None
        self.session: ort.InferenceSession | None = None
        self.card: dict[str, Any] = {}
        self.load_seconds = 0.0
        self.features = 0
        self.input_name = "input"
        self.columns: list[str] = []  # the numeric columns, by name: the ``input`` tensor's
        self.categorical: list[str] = []  # text columns the graph one-hot encodes: the ``categories`` tensor's

    def load(self) -> None:
        started = time.perf_counter()
        data = (self.model_dir / "model.onnx").read_bytes()
        self.card = json.loads((self.model_dir / "model.json").read_text())
        digest = hashlib.sha256(data).hexdigest()
        for expected, what in ((self.sha256, "its TrainingRun recorded"), (self.card.get("sha256"), "in model.json")):
            if expected and digest != expected:
                raise ModelError(
                    "ChecksumMismatch",
                    f"{self.model_dir}/model.onnx (sha256 {digest[:12]}) does not match the sha256 {what} "
                    f"({str(expected)[:12]})",
                    status_code=500,
                )
        self.session = ort.InferenceSession(data, session_options(self.threads), providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        columns = self.card.get("columns") or {}
        self.columns = [str(c) for c in columns.get("features") or []]
        self.categorical = [str(c) for c in columns.get("categorical") or []] if CATEGORIES in inputs else []
        if CATEGORIES in inputs and len(self.categorical) != (inputs[CATEGORIES].shape[1] or 0):
            raise ModelError(
                "InvalidModel", "model.json's categorical columns do not match the model's inputs", status_code=500
            )
        self.input_name = next(iter(inputs))
        shape = inputs[INPUT].shape if INPUT in inputs else [None, 0]
        self.features = int(shape[1]) if len(shape) > 1 and isinstance(shape[1], int) else 0
        self.load_seconds = time.perf_counter() - started

    @property
    def name(self) -> str:
        return str(self.card.get("name", "model"))

    @property
    def version(self) -> int:
        return int(self.card.get("version", 0))

    def check(
        self,
        X: Any,
        max_rows: int | None = MAX_ROWS,
        names: Any = None,  # noqa: N803  (Seldon's argument name)
    ) -> np.ndarray:
        """Rows of numbers with the model's feature count, as float32; ModelError otherwise. A model with
        categorical columns takes rows of raw values (numbers, then text) and gets an object array.

        ``names``: the columns of ``X`` by name (Seldon's ``data.names``), in any order, extra ones ignored;
        ``X`` may also be a dict of columns by name (the Open Inference protocol's inputs).
        ``max_rows`` bounds one request; offline scoring passes None for chunks of any size."""
        if isinstance(X, dict) or names is not None or self.categorical:
            return self._check_named(X, names, max_rows)
        return self._check_numbers(X, max_rows)

    def _check_numbers(self, X: Any, max_rows: int | None) -> np.ndarray:  # noqa: N803
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf, refused below
                array = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as error:
            raise ModelError("InvalidInput", f"inputs must be numbers: {str(error)[:200]}") from error
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[0] == 0:
            raise ModelError("InvalidShape", f"inputs must be a non-empty list of rows, got shape {list(array.shape)}")
        if self.features and array.shape[1] != self.features:
            raise ModelError("InvalidShape", f"each row needs {self.features} features, got {array.shape[1]}")
        if max_rows is not None and array.shape[0] > max_rows:
            raise ModelError("TooManyRows", f"at most {max_rows} rows per request, got {array.shape[0]}", 413)
        if not np.isfinite(array).all():
            raise ModelError("InvalidInput", "inputs contain NaN, infinity or values beyond float32 range")
        return array

    def _check_named(self, X: Any, names: Any, max_rows: int | None) -> np.ndarray:  # noqa: N803
        """Raw columns by name (or in the card's order: numeric, then categorical) into the model's rows."""
        wanted = [*self.columns, *self.categorical]
        if not wanted:  # a card from before columns were kept by name: the rows as they are
            return self._check_numbers(X, max_rows)
        if isinstance(X, dict):
            by_name = X
        else:
            rows = X if isinstance(X, list) else np.asarray(X, dtype=object).tolist()
            if rows and not isinstance(rows[0], list):
                rows = [rows]
            if not rows or any(not isinstance(row, list) for row in rows):
                raise ModelError("InvalidShape", "inputs must be a non-empty list of rows")
            given = [str(n) for n in names] if isinstance(names, list) else wanted
            if any(len(row) != len(given) for row in rows):
                raise ModelError("InvalidShape", f"each row needs {len(given)} values ({', '.join(given[:20])})")
            by_name = {name: [row[i] for row in rows] for i, name in enumerate(given)}
        missing = [name for name in wanted if name not in by_name]
        if missing:
            raise ModelError("MissingColumns", f"inputs lack the model's columns {missing[:20]}")
        if not self.categorical:
            return self._check_numbers(np.asarray([by_name[c] for c in wanted], dtype=object).T.tolist(), max_rows)
        count = len(by_name[wanted[0]])
        if any(len(by_name[c]) != count for c in wanted):
            raise ModelError("InvalidShape", "every column needs the same number of values")
        numbers = self._check_numbers(
            [[by_name[c][i] for c in self.columns] for i in range(count)] if self.columns else [[0.0]] * count,
            max_rows,
        )
        rows = np.empty((count, len(wanted)), dtype=object)
        if self.columns:
            rows[:, : len(self.columns)] = numbers
        for j, name in enumerate(self.categorical):
            rows[:, len(self.columns) + j] = [_category(value, name) for value in by_name[name]]
        return rows

    def feeds(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The session's inputs for checked rows."""
        if not self.categorical:
            return {self.input_name: rows}
        width = len(self.columns)
        strings = np.asarray(rows[:, width:], dtype=object)
        return {**({INPUT: rows[:, :width].astype(np.float32)} if width else {}), CATEGORIES: strings}

    def raw(self, row: np.ndarray) -> tuple[list[float], list[str] | None]:
        """One checked row as it is logged: its numbers, and its categorical values (None without any)."""
        if not self.categorical:
            return row.tolist(), None
        width = len(self.columns)
        return [float(v) for v in row[:width]], [str(v) for v in row[width:]]

    @property
    def regression(self) -> bool:
        """A regressor's card (task regression): one value per row, in the target's units, not probabilities."""
        return self.card.get("task") == "regression"

    def predict(self, X: Any, names: Any = None, meta: Any = None) -> np.ndarray:  # noqa: N803
        """Class probabilities (a regressor: its value), one row per input row. ``names``: Seldon's feature names
        (the request's ``data.names``; empty when it gave none)."""
        return self.infer(self.check(X, names=list(names) if names is not None and len(names) else None))

    def infer(self, rows: np.ndarray) -> np.ndarray:
        """``predict`` for rows already checked (the server checks each request before batching)."""
        if self.session is None:
            raise ModelError("NotReady", "model is not loaded", 503)
        logits = self.session.run(None, self.feeds(rows))[0]
        if self.regression:
            return logits.reshape(-1, 1)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def labels(self, probabilities: np.ndarray) -> list[str]:
        """The predicted class of each row, as the training data named it; a regressor's value as text."""
        if self.regression:
            return [value_label(v) for v in probabilities[:, 0].tolist()]
        names = self.class_names()
        picks = probabilities.argmax(axis=1).tolist()
        return [names[i] if i < len(names) else str(i) for i in picks]

    def class_names(self) -> list[str]:
        """The output's column names: the classes, or a regressor's one ``value``."""
        if self.regression:
            return [VALUE]
        return [str(c) for c in (self.card.get("columns") or {}).get("classes", [])]

    def health_status(self) -> dict[str, Any]:
        if self.session is None:
            raise ModelError("NotReady", "model is not loaded", 503)
        return {"model": self.name, "version": self.version, "ready": True}

    def init_metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [str(self.version)],
            "platform": "onnxruntime",
            "inputs": self._inputs(),
            "outputs": [
                {
                    "name": VALUE if self.regression else "probabilities",
                    "datatype": "FP32",
                    "shape": [-1, len(self.class_names())],
                }
            ],
        }

    def _inputs(self) -> list[dict[str, Any]]:
        """One FP32 tensor of every feature; with categorical columns, one tensor per column, by name."""
        if not self.categorical:
            return [{"name": "input", "datatype": "FP32", "shape": [-1, self.features]}]
        numeric = [{"name": c, "datatype": "FP32", "shape": [-1]} for c in self.columns]
        return numeric + [{"name": c, "datatype": "BYTES", "shape": [-1]} for c in self.categorical]

    def metrics(self) -> list[dict[str, Any]]:
        return [{"type": "GAUGE", "key": "lathe_model_load_seconds", "value": self.load_seconds}]


def _seldon_error_handler() -> None:
    """Under seldon-core-microservice (Flask), answer ModelError with its status and reason, not a 500.

    Seldon registers a Flask blueprint found as ``model_error_handler`` on the model class;
    Flask exists only in the Seldon environment, so Lathe's own server never imports it.
    """
    try:
        import flask
    except ImportError:
        return
    blueprint = flask.Blueprint("lathe_model_errors", __name__)

    @blueprint.app_errorhandler(ModelError)
    def handle(error: ModelError) -> Any:
        response = flask.jsonify(error.to_dict())
        response.status_code = error.status_code
        return response

    LatheModel.model_error_handler = blueprint  # type: ignore[attr-defined]


_seldon_error_handler()

"""Request and response bodies of the Seldon and Open Inference (V2) protocols, as plain functions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .answers import TAG, Answer
from .model import MAX_ROWS, VALUE, ModelError, value_label

MAX_CLASS = 256  # characters in one class of feedback's truth
MAX_ID = 128  # characters in a request id a client chooses (Seldon's meta.puid, V2's id), in requests and feedback


def seldon_inputs(body: Any) -> Any:
    """``{"data": {"ndarray": rows}}`` or ``{"data": {"tensor": {"shape": [...], "values": [...]}}}``."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ModelError("InvalidRequest", 'expected {"data": {"ndarray": [[...]]}} or {"data": {"tensor": ...}}')
    if "ndarray" in data:
        return data["ndarray"]
    tensor = data.get("tensor")
    if isinstance(tensor, dict) and isinstance(tensor.get("shape"), list) and isinstance(tensor.get("values"), list):
        try:
            return np.asarray(tensor["values"], dtype=np.float32).reshape(tensor["shape"])
        except (ValueError, TypeError) as error:
            raise ModelError("InvalidShape", f"tensor values do not fit shape {tensor['shape']}: {error}") from error
    raise ModelError("InvalidRequest", "data needs ndarray or tensor")


def seldon_names(body: Any) -> list[str] | None:
    """The columns of ``data.ndarray`` by name (``data.names``), when the caller gave them."""
    names = body["data"].get("names") if isinstance(body, dict) and isinstance(body.get("data"), dict) else None
    return [str(n) for n in names] if isinstance(names, list) and names else None


def seldon_puid(body: Any) -> str | None:
    """A request id the caller chose (``meta.puid``), which then names the request in logs and feedback."""
    meta = body.get("meta") if isinstance(body, dict) else None
    puid = meta.get("puid") if isinstance(meta, dict) else None
    return puid if isinstance(puid, str) and 0 < len(puid) <= MAX_ID else None


def v2_id(body: Any) -> str | None:
    """The request id a V2 caller chose (``id``), kept when it is short enough to log."""
    given = body.get("id") if isinstance(body, dict) else None
    return given if isinstance(given, str) and 0 < len(given) <= MAX_ID else None


def seldon_response(
    probabilities: np.ndarray, names: list[str], model: str, version: int, puid: str, tag: str
) -> dict[str, Any]:
    return {
        "data": {"names": names, "ndarray": probabilities.tolist()},
        "meta": {"puid": puid, "requestPath": {"model": f"{model}:{version}"}, "tags": {TAG: tag}},
    }


def seldon_answer(response: Any) -> tuple[Answer, str] | None:
    """(version and predicted classes, signature tag) from a Seldon response as feedback carries it back;
    the tag tells whether this deployment gave it (``answers.Answers.find``)."""
    try:
        data, meta = response["data"], response["meta"]
        version = int(str(next(iter(meta["requestPath"].values()))).rsplit(":", 1)[1])
        names, tag = data["names"], meta["tags"][TAG]
        if names == [VALUE]:  # a regressor's values
            labels = [value_label(float(row[0])) for row in data["ndarray"]]
        else:
            labels = [str(names[max(range(len(row)), key=row.__getitem__)]) for row in data["ndarray"]]
        return (Answer(version, labels), tag) if isinstance(tag, str) else None
    except (KeyError, TypeError, ValueError, IndexError, StopIteration, AttributeError):
        return None


def seldon_feedback(body: Any) -> tuple[str, list[str]]:
    """Seldon's feedback: ``{"response": {"meta": {"puid"}}, "truth": {"data": {"ndarray": [...]}}}``."""
    if not isinstance(body, dict):
        raise ModelError("InvalidRequest", "feedback must be a JSON object")
    response = body.get("response")
    meta = response.get("meta") if isinstance(response, dict) else None
    puid = meta.get("puid") if isinstance(meta, dict) else None
    if not isinstance(puid, str) or not puid:
        raise ModelError("InvalidRequest", "feedback needs response.meta.puid, the id of the answered request")
    if len(puid) > MAX_ID:
        raise ModelError("InvalidRequest", f"response.meta.puid has {len(puid)} characters; at most {MAX_ID}")
    truth = body.get("truth")
    data = truth.get("data") if isinstance(truth, dict) else None
    values = data.get("ndarray") if isinstance(data, dict) else None
    if not isinstance(values, list) or not values:
        raise ModelError("InvalidRequest", "feedback needs truth.data.ndarray with the true class of each row")
    if len(values) > MAX_ROWS:
        raise ModelError("InvalidRequest", f"truth.data.ndarray has {len(values)} rows; at most {MAX_ROWS}")
    flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
    if any(isinstance(v, (list, dict)) or v is None for v in flat):
        raise ModelError("InvalidRequest", "truth.data.ndarray must hold one class per row")
    truth = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in flat]
    if any(len(v) > MAX_CLASS for v in truth):
        raise ModelError("InvalidRequest", f"a class in truth.data.ndarray is longer than {MAX_CLASS} characters")
    return puid, truth


def v2_inputs(body: Any, text: bool = False) -> Any:
    """``{"inputs": [{"name", "shape", "datatype", "data"}]}``: one numeric tensor of every feature, or one
    tensor per column, named by column (``{name: values}``; text columns have datatype BYTES, which only a
    model with text columns takes: ``text``)."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise ModelError("InvalidRequest", 'expected {"inputs": [{"name", "shape", "datatype", "data"}]}')
    if not text and any(i.get("datatype") == "BYTES" for i in inputs):
        raise ModelError(
            "InvalidDatatype",
            "datatype 'BYTES' is not numeric (FP32, FP64, INT32, INT64): this model has no text columns",
        )
    if len(inputs) > 1 or inputs[0].get("datatype") == "BYTES":
        return _v2_columns(inputs)
    tensor = inputs[0]
    if tensor.get("datatype") not in ("FP32", "FP64", "INT32", "INT64"):
        raise ModelError(
            "InvalidDatatype", f"datatype {tensor.get('datatype')!r} is not numeric (FP32, FP64, INT32, INT64)"
        )
    shape, data = tensor.get("shape"), tensor.get("data")
    if not isinstance(shape, list) or not isinstance(data, list):
        raise ModelError("InvalidRequest", "an input needs a shape list and a data list")
    try:
        return np.asarray(data, dtype=np.float32).reshape(shape)
    except (ValueError, TypeError) as error:
        raise ModelError("InvalidShape", f"data does not fit shape {shape}: {str(error)[:200]}") from error


def _v2_columns(inputs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    columns = {}
    for tensor in inputs:
        name, data = tensor.get("name"), tensor.get("data")
        if not isinstance(name, str) or not isinstance(data, list):
            raise ModelError("InvalidRequest", "each input needs a name (its column) and a data list")
        if tensor.get("datatype") not in ("FP32", "FP64", "INT32", "INT64", "BYTES"):
            raise ModelError("InvalidDatatype", f"input {name}: datatype {tensor.get('datatype')!r} is not supported")
        columns[name] = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]  # [N] or [N, 1]
    return columns


def v2_response(probabilities: np.ndarray, model: str, version: int, request_id: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "model_name": model,
        "model_version": str(version),
        "outputs": [
            {
                "name": "probabilities",
                "shape": list(probabilities.shape),
                "datatype": "FP32",
                "data": probabilities.ravel().tolist(),
            }
        ],
    }
    if request_id:
        answer["id"] = request_id
    return answer

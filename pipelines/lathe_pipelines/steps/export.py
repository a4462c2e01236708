"""Export the trained module to ONNX and check that onnxruntime agrees with PyTorch."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from .classifier import CHUNK_ROWS, Classifier, scores
from .encoding import INPUT
from .errors import TrainingFailed

OUTPUT = "logits"
VALUE = "value"  # a regressor's only output: [batch, 1], in the target's units


def output_name(task: str) -> str:
    return VALUE if task == "regression" else OUTPUT


OPSET = 18


def export(model: Classifier, features: int, path: Path, dynamo: bool = False) -> str:
    """Write model.onnx (dynamic batch dimension) and return its sha256.

    The TorchScript exporter is the default: for these feed-forward models it gives the same
    graph as the torch.export-based one in a fraction of the time (about 0.3 s against 4 s
    here, which is most of a pipeline step). The parity check below guards either path.
    """
    example = torch.zeros(2, features, dtype=torch.float32)
    output = VALUE if model.regressor else OUTPUT
    if dynamo:
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" noise
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[INPUT],
            output_names=[output],
            opset_version=OPSET,
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            verbose=False,
        )
        assert program is not None
        program.save(str(path))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's own notices
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                input_names=[INPUT],
                output_names=[output],
                opset_version=OPSET,
                dynamic_axes={INPUT: {0: "batch"}, output: {0: "batch"}},
            )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parity(
    model: Classifier, path: Path, x: np.ndarray, atol: float = 1e-4, encoding: Any = None
) -> dict[str, float | int]:
    """Max absolute logit difference and argmax agreement on held-out rows; TrainingFailed past ``atol``.
    A regressor's values are compared relative to the target's scale (``atol`` standard deviations).
    ``encoding``: the model takes raw categorical values (``encoding.py``), fed here from the encoded rows."""
    with torch.no_grad():
        expected = scores(model, x, "cpu").numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if model.regressor:
        actual = predict(session, VALUE, x, encoding)
        diff = float(np.abs(actual - expected).max() / float(model.scale[1]))
        return verdict("PyTorch", "value (in target standard deviations)", diff, 1.0, len(x), atol)
    actual = predict(session, OUTPUT, x, encoding)
    diff = float(np.abs(actual - expected).max())
    agreement = float((actual.argmax(1) == expected.argmax(1)).mean())
    return verdict("PyTorch", "logit", diff, agreement, len(x), atol)


def predict(session: ort.InferenceSession, output: str, x: np.ndarray, encoding: Any = None) -> np.ndarray:
    """The exported model's ``output`` for encoded rows, fed as the served graph takes them (``encoding.feeds``),
    ``CHUNK_ROWS`` at a time: ``x`` may be a memory-mapped split larger than memory."""
    from .encoding import feeds

    starts = range(0, max(len(x), 1), CHUNK_ROWS)
    return np.concatenate(
        [session.run([output], feeds(np.asarray(x[s : s + CHUNK_ROWS]), encoding))[0] for s in starts]
    )


def verdict(
    framework: str, values: str, diff: float, agreement: float, rows: int, atol: float
) -> dict[str, float | int]:
    """The parity figures the card keeps; TrainingFailed (ParityMismatch) past ``atol`` or on any other class."""
    if diff > atol or agreement < 1.0:
        raise TrainingFailed(
            "ParityMismatch",
            f"onnxruntime differs from {framework}: max |{values} diff| {diff:.2e} > {atol:.0e} "
            f"or argmax agreement {agreement:.4f} < 1",
        )
    return {"maxAbsDiff": diff, "argmaxAgreement": agreement, "rows": rows, "atol": atol}

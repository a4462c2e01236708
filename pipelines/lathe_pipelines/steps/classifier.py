"""Train a PyTorch classifier (MLP or logistic regression) or regressor (MLP) deterministically, on CUDA when present.

Input standardisation is part of the module, so the exported ONNX graph takes raw features; so is a regressor's
target scale (it learns the standardised target and answers in the target's units).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import TrainingFailed

IN_MEMORY = 2**30  # bytes of a split held whole (on the device); a larger one is read from its memory map
CHUNK_ROWS = 65_536
DEFAULTS = {"hidden": [128, 64], "epochs": 20, "lr": 0.001, "batchSize": 64, "weightDecay": 0.0, "dropout": 0.0}


class Classifier(nn.Module):
    """``classes`` logits per row; a regressor (``scale``: the target's mean and standard deviation) one value."""

    def __init__(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        hidden: list[int],
        classes: int,
        dropout: float,
        scale: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.regressor = scale is not None
        self.register_buffer("scale", torch.tensor(scale or (0.0, 1.0), dtype=torch.float32))
        layers: list[nn.Module] = []
        width = len(mean)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            width = size
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net((x - self.mean) / self.std)
        return out * self.scale[1] + self.scale[0] if self.regressor else out


@dataclass
class Trained:
    model: Classifier
    device: str
    params: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def params_for(model_type: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    params = {**DEFAULTS, **hyperparameters}
    if model_type == "logistic":
        params["hidden"] = []
    elif model_type != "mlp":
        raise TrainingFailed("UnknownModelType", f"unknown model type {model_type!r}: use mlp or logistic")
    unknown = set(hyperparameters) - set(DEFAULTS)
    if unknown:
        raise TrainingFailed(
            "InvalidHyperparameters", f"unknown hyperparameters {sorted(unknown)}; known: {sorted(DEFAULTS)}"
        )
    try:  # kfp carries parameters as protobuf Struct values, where every number is a float
        params["hidden"] = [int(h) for h in params["hidden"]]
        params["epochs"], params["batchSize"] = int(params["epochs"]), int(params["batchSize"])
        params["lr"], params["weightDecay"] = float(params["lr"]), float(params["weightDecay"])
        params["dropout"] = float(params["dropout"])
    except (TypeError, ValueError) as error:
        raise TrainingFailed("InvalidHyperparameters", f"hyperparameters {hyperparameters}: {error}") from error
    if params["epochs"] < 1 or params["batchSize"] < 1 or any(h < 1 for h in params["hidden"]) or params["lr"] <= 0:
        raise TrainingFailed("InvalidHyperparameters", "epochs, batchSize, hidden sizes and lr must be positive")
    return params


def seed_everything(seed: int) -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def train(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    classes: int,
    model_type: str,
    hyperparameters: dict[str, Any],
    seed: int,
    device: str | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    task: str = "classification",
) -> Trained:
    """``on_epoch`` gets each epoch's figures with ``epochs``, the total, as training goes. A regressor
    (``task``) learns one value per row with the mean squared error of the standardised target."""
    params = params_for(model_type, hyperparameters)
    seed_everything(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    mean, std = moments(x)
    regression = task == "regression"
    scale = (float(y.mean()), float(y.std()) or 1.0) if regression else None
    model = Classifier(
        mean,
        np.where(std > 0, std, 1.0),
        list(params["hidden"]),
        1 if regression else classes,
        float(params["dropout"]),
        scale,
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(params["lr"]), weight_decay=float(params["weightDecay"]))
    loss_fn = _standardised_mse(scale) if scale else nn.CrossEntropyLoss()
    shape = (-1, 1) if regression else (-1,)
    rows_of = _rows(x, device)
    yt = torch.tensor(y, device=device).reshape(shape)
    yv = torch.tensor(y_val, device=device).reshape(shape)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    trained = Trained(model, device, params)
    started = time.perf_counter()
    batch = int(params["batchSize"])
    for epoch in range(int(params["epochs"])):
        model.train()
        order = torch.randperm(len(yt), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(yt), batch):
            rows = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(rows_of(rows)), yt[rows])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        train_loss = total / len(yt)
        if not math.isfinite(train_loss):
            raise TrainingFailed(
                "NaNLoss",
                f"training loss became {train_loss} in epoch {epoch + 1}: look for missing "
                "or infinite feature values (expect_column_values_to_not_be_null) or lower lr",
            )
        model.eval()
        with torch.no_grad():
            logits = scores(model, x_val, device)
            val_loss = float(loss_fn(logits, yv))
            if regression:
                figure = {"valRmse": float(((logits - yv) ** 2).mean().sqrt())}
            else:
                figure = {"valAccuracy": float((logits.argmax(1) == yv).float().mean())}
        trained.history.append({"epoch": epoch + 1, "trainLoss": train_loss, "valLoss": val_loss, **figure})
        if on_epoch is not None:
            on_epoch({**trained.history[-1], "epochs": int(params["epochs"])})
    trained.seconds = time.perf_counter() - started
    model.to("cpu").eval()
    return trained


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation, missing values left out; a large (memory-mapped) matrix
    in chunks, their figures combined exactly (Chan et al.), instead of numpy's copies of the whole."""
    if x.nbytes <= IN_MEMORY:
        return np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    width = x.shape[1]
    count, mean, squares = np.zeros(width), np.zeros(width), np.zeros(width)
    for start in range(0, len(x), CHUNK_ROWS):
        chunk = np.asarray(x[start : start + CHUNK_ROWS], dtype="float64")
        n = (~np.isnan(chunk)).sum(axis=0)
        m = np.divide(np.nansum(chunk, axis=0), n, out=np.zeros(width), where=n > 0)
        total = count + n
        share = np.divide(n, total, out=np.zeros(width), where=total > 0)
        delta = m - mean
        mean = mean + delta * share
        squares = squares + np.nansum((chunk - m) ** 2, axis=0) + delta**2 * count * share
        count = total
    known = count > 0
    mean = np.where(known, mean, np.nan)  # as nanmean: no value, no mean
    std = np.sqrt(np.divide(squares, count, out=np.full(width, np.nan), where=known))
    return mean.astype("float32"), std.astype("float32")


def _rows(x: np.ndarray, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Rows by index: from a copy on the device, or, past ``IN_MEMORY``, read from ``x`` (memory-mapped) per batch."""
    if x.nbytes <= IN_MEMORY:
        whole = torch.tensor(np.asarray(x), device=device)
        return lambda rows: whole[rows]
    return lambda rows: torch.from_numpy(np.asarray(x[rows.cpu().numpy()])).to(device)


def scores(model: nn.Module, x: np.ndarray, device: str) -> torch.Tensor:
    """The model's outputs for every row of ``x``, ``CHUNK_ROWS`` at a time: the hidden layers' activations
    for a million rows would take GBs."""
    if len(x) <= CHUNK_ROWS:
        return model(torch.tensor(np.asarray(x), device=device))
    starts = range(0, len(x), CHUNK_ROWS)
    return torch.cat([model(torch.from_numpy(np.array(x[s : s + CHUNK_ROWS])).to(device)) for s in starts])


def _standardised_mse(scale: tuple[float, float]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Mean squared error in standard deviations of the target: the same learning rate suits any units."""
    variance = scale[1] ** 2

    def loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((predicted - target) ** 2).mean() / variance

    return loss

"""What one server process serves: model versions, the traffic split between them, a shadow.

A deployment file (written by the operator in local mode) looks like::

    {"namespace": "ml", "deployment": "digits", "model": "digits-classifier",
     "models": {"3": "/dir/3", "4": "/dir/4", "5": "/dir/5"},
     "traffic": {"3": 90, "4": 10}, "shadow": 5,
     "logging": {"sampleRate": 0.1},
     "checksums": {"3": "<sha256 its TrainingRun recorded>", ...}}

``--model-dir`` alone is the one-version case (a Seldon predictor runs one version per
pod, and Seldon splits traffic between predictors). The file is read again on SIGHUP;
versions already loaded are kept, new ones loaded before traffic moves to them.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import LatheModel, ModelError


@dataclass
class Settings:
    namespace: str = ""
    deployment: str = ""
    models: dict[int, str] = field(default_factory=dict)
    traffic: dict[int, int] = field(default_factory=dict)
    shadow: int | None = None
    sample_rate: float = 0.0
    digest: str = ""
    checksums: dict[int, str] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Settings:
        raw = path.read_bytes()
        body = json.loads(raw)
        models = {int(k): str(v) for k, v in body["models"].items()}
        traffic = {int(k): int(v) for k, v in body.get("traffic", {}).items() if int(v) > 0}
        shadow = body.get("shadow")
        for version in [*traffic, *([shadow] if shadow else [])]:
            if version not in models:
                raise ValueError(f"{path}: version {version} has traffic but no model folder")
        if not traffic or sum(traffic.values()) != 100:
            raise ValueError(f"{path}: traffic must add up to 100, got {traffic}")
        return cls(
            namespace=str(body.get("namespace", "")),
            deployment=str(body.get("deployment", "")),
            models=models,
            traffic=traffic,
            shadow=int(shadow) if shadow else None,
            sample_rate=float((body.get("logging") or {}).get("sampleRate", 0.0)),
            digest=hashlib.sha256(raw).hexdigest()[:16],
            checksums={int(k): str(v) for k, v in (body.get("checksums") or {}).items()},
        )

    @classmethod
    def single(
        cls, model_dir: str, namespace: str = "", deployment: str = "", sample_rate: float = 0.0, sha256: str = ""
    ) -> Settings:
        card = json.loads((Path(model_dir) / "model.json").read_text())
        version = int(card.get("version", 0))
        return cls(
            namespace=namespace,
            deployment=deployment,
            models={version: model_dir},
            traffic={version: 100},
            sample_rate=sample_rate,
            checksums={version: sha256} if sha256 else {},
        )


class Deployment:
    """Loaded models by version and the current split; ``route()`` picks a version per request."""

    def __init__(self, settings: Settings, threads: int | None = None) -> None:
        self.threads = threads
        self.models: dict[int, LatheModel] = {}
        self.settings = settings
        self._load(settings)
        self._apply(settings)

    @classmethod
    def of(cls, model: LatheModel) -> Deployment:
        """A loaded model on its own (tests, embedding)."""
        deployment = cls.__new__(cls)
        deployment.threads = model.threads
        deployment.models = {model.version: model}
        deployment._apply(Settings(models={model.version: str(model.model_dir)}, traffic={model.version: 100}))
        return deployment

    def _load(self, settings: Settings) -> None:
        for version, folder in settings.models.items():
            if version not in self.models or str(self.models[version].model_dir) != folder:
                model = LatheModel(folder, threads=self.threads, sha256=settings.checksums.get(version))
                model.load()
                if model.version != version:
                    raise ValueError(f"{folder} holds version {model.version}, expected {version}")
                self.models[version] = model

    def _apply(self, settings: Settings) -> None:
        self.settings = settings
        self.versions = list(settings.traffic)
        self.cumulative = []
        total = 0
        for version in self.versions:
            total += settings.traffic[version]
            self.cumulative.append(total)
        names = {model.name for model in self.models.values()}
        self.name = next(iter(names)) if len(names) == 1 else settings.deployment

    def reload(self, settings: Settings) -> list[int]:
        """Load new versions first, then switch traffic; returns versions no longer used (caller drops them)."""
        self._load(settings)
        self._apply(settings)
        unused = [v for v in self.models if v not in settings.models]
        for version in unused:
            del self.models[version]
        return unused

    def route(self, draw: float | None = None) -> LatheModel:
        point = (random.random() if draw is None else draw) * 100
        for version, upper in zip(self.versions, self.cumulative, strict=True):
            if point < upper:
                return self.models[version]
        return self.models[self.versions[-1]]

    def by_name(self, name: str) -> LatheModel:
        """V2 addresses a model by name; ``name`` or ``name:version`` (a shadow is not addressable)."""
        base, _, version = name.partition(":")
        if base == self.name:
            if not version:
                return self.route()
            if version.isdigit() and int(version) in self.settings.traffic:
                return self.models[int(version)]
        raise ModelError("ModelNotFound", f"no model named {name!r}; this server has {self.name!r}", 404)

    @property
    def shadow(self) -> LatheModel | None:
        return self.models.get(self.settings.shadow) if self.settings.shadow else None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": self.settings.digest,
            "traffic": {str(v): p for v, p in self.settings.traffic.items()},
            "shadow": self.settings.shadow,
            "versions": sorted(self.models),
        }

"""The ``DriftMonitor`` kind: live inputs and predictions compared with the training reference."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from .common import ApiModel, CommonStatus, Duration, Name, Resource, age_column, ready_column, reason_column, rule


class Window(ApiModel):
    """Which live samples a check looks at."""

    duration: Duration = Field(default="1h", description="How far back a check looks.")
    min_samples: int = Field(default=500, ge=1, description="Fewer samples give verdict InsufficientData.")


class DriftTests(ApiModel):
    """Statistical tests per column type; auto picks Evidently-style defaults by sample size."""

    numeric: Literal["auto", "ks", "psi", "wasserstein", "jensenshannon"] = Field(
        default="auto", description="Test for numeric columns."
    )
    categorical: Literal["auto", "chisquare", "psi", "jensenshannon"] = Field(
        default="auto", description="Test for categorical columns."
    )
    threshold: float | None = Field(default=None, gt=0, description="Override the test's default threshold.")


class AccuracyCheck(ApiModel):
    """Live accuracy on sampled ground truth posted as feedback."""

    min: float = Field(ge=0, le=1, description="Lowest acceptable live accuracy.")


class Retrain(ApiModel):
    """The closed loop: refresh the data, train, canary, promote."""

    cooldown: Duration = Field(default="6h", description="Least time between two retrains.")
    training_run_template: dict[str, Any] = Field(
        default_factory=dict, description="TrainingRun spec fields overriding the deployed model's run."
    )


class DriftMonitorSpec(ApiModel):
    """What to watch and what to do about drift."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule("self.action != 'retrain' || has(self.retrain)", "action retrain needs spec.retrain")
            ]
        }
    }

    deployment: Name = Field(description="ModelDeployment to watch.")
    interval: Duration = Field(default="5m", description="How often to check.")
    window: Window = Field(default_factory=Window, description="Samples a check looks at.")
    tests: DriftTests = Field(default_factory=DriftTests, description="Statistical tests.")
    drift_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of drifted columns that makes the dataset drifted."
    )
    accuracy: AccuracyCheck | None = Field(default=None, description="Live accuracy floor.")
    action: Literal["alert", "retrain"] = Field(default="alert", description="alert or retrain.")
    retrain: Retrain | None = Field(default=None, description="Closed-loop settings for action retrain.")


class FeatureDrift(ApiModel):
    """Drift of one column."""

    name: str = Field(description="Column.")
    test: str = Field(description="Test used.")
    score: float = Field(description="Test statistic or p-value.")
    threshold: float = Field(description="Threshold applied.")
    drifted: bool = Field(description="Whether the column drifted.")


class RetrainRecord(ApiModel):
    """One retrain the monitor started."""

    time: datetime = Field(description="When it started.")
    training_run: str = Field(description="TrainingRun it created.")
    reason: str = Field(default="", description="Why.")


class DriftMonitorStatus(CommonStatus):
    """The last check."""

    verdict: Literal["NoDrift", "Drift", "InsufficientData"] | None = Field(default=None, description="Last verdict.")
    drift_share: float | None = Field(default=None, ge=0, le=1, description="Share of drifted columns.")
    features: list[FeatureDrift] = Field(default_factory=list, description="Per-column results.")
    live_accuracy: float | None = Field(default=None, ge=0, le=1, description="Accuracy on feedback.")
    last_check: datetime | None = Field(default=None, description="When the last check ran.")
    report_uri: str | None = Field(default=None, description="HTML report of the last check.")
    retrains: list[RetrainRecord] = Field(default_factory=list, max_length=50, description="Retrains started.")


class DriftMonitor(Resource):
    """Statistical drift of live traffic against the training reference."""

    kind_name: ClassVar[str] = "DriftMonitor"
    plural: ClassVar[str] = "driftmonitors"
    short_names: ClassVar[list[str]] = ["dm"]
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Deployment", "type": "string", "jsonPath": ".spec.deployment"},
        {"name": "Verdict", "type": "string", "jsonPath": ".status.verdict"},
        {"name": "Drift", "type": "number", "jsonPath": ".status.driftShare"},
        ready_column(),
        reason_column(),
        age_column(),
    ]

    kind: Literal["DriftMonitor"] = "DriftMonitor"
    spec: DriftMonitorSpec = Field(description="What to watch and what to do about drift.")
    status: DriftMonitorStatus = Field(default_factory=DriftMonitorStatus, description="Observed state.")

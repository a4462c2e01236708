"""The ``DriftMonitor`` kind: live inputs and predictions compared with the training reference."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from .common import ApiModel, CommonStatus, Duration, Name, Resource, age_column, ready_column, reason_column, rule
from .training_run import DatasetRef

NumericTest = Literal["auto", "ks", "psi", "wasserstein", "jensenshannon"]
CategoricalTest = Literal["auto", "chisquare", "z", "psi", "jensenshannon", "share"]


class Window(ApiModel):
    """Which live samples a check looks at."""

    duration: Duration = Field(default="1h", description="How far back a check looks.")
    min_samples: int = Field(default=500, ge=1, description="Fewer samples give verdict InsufficientData.")


class ColumnTest(ApiModel):
    """The test for one column."""

    test: Literal["ks", "psi", "wasserstein", "jensenshannon", "chisquare", "z", "share"] = Field(
        description="Test; numeric columns take ks, psi, wasserstein, jensenshannon; categorical ones chisquare, z, "
        "psi, jensenshannon, share."
    )
    threshold: float | None = Field(default=None, gt=0, description="Threshold; the test's default when omitted.")


class DriftTests(ApiModel):
    """Statistical tests per column type (docs/drift.md); auto: Lathe's defaults, wasserstein and share."""

    numeric: NumericTest = Field(default="auto", description="Test for numeric columns.")
    categorical: CategoricalTest = Field(default="auto", description="Test for categorical columns.")
    threshold: float | None = Field(
        default=None, gt=0, description="Override the numeric and categorical tests' threshold."
    )
    columns: dict[str, ColumnTest] = Field(default_factory=dict, description="Tests for single columns, by name.")
    correction: Literal["none", "bonferroni", "fdr"] = Field(
        default="none", description="Multiple-testing correction of p-value tests across columns."
    )


class DriftSource(ApiModel):
    """The current data a check compares with the reference."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule("self.type != 'dataset' || has(self.dataset)", "source type dataset needs source.dataset")
            ]
        }
    }

    type: Literal["logs", "dataset"] = Field(
        default="logs", description="logs: the deployment's request logs over the window; dataset: a Dataset version."
    )
    dataset: DatasetRef | None = Field(default=None, description="For type dataset; its newest version when unpinned.")


class AccuracyCheck(ApiModel):
    """Live accuracy on sampled ground truth posted as feedback."""

    min: float = Field(ge=0, le=1, description="Lowest acceptable live accuracy.")
    min_labelled: int = Field(default=100, ge=1, description="Labelled samples needed before live accuracy counts.")


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
                rule("self.action != 'retrain' || has(self.retrain)", "action retrain needs spec.retrain"),
                rule(
                    "has(self.deployment) || has(self.reference)", "without spec.deployment, spec.reference is needed"
                ),
                rule(
                    "has(self.deployment) || (has(self.source) && self.source.type == 'dataset')",
                    "source logs needs spec.deployment",
                ),
            ]
        }
    }

    deployment: Name | None = Field(
        default=None, description="ModelDeployment to watch; its model's training data is the default reference."
    )
    source: DriftSource = Field(default_factory=DriftSource, description="Current data: request logs or a Dataset.")
    reference: DatasetRef | None = Field(
        default=None, description="Reference Dataset version; the served model's training data when omitted."
    )
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
    score: float | None = Field(default=None, description="Test statistic (distance, or the test's statistic).")
    p_value: float | None = Field(default=None, description="p-value, for ks, chisquare and z.")
    threshold: float | None = Field(default=None, description="Threshold applied.")
    drifted: bool = Field(default=False, description="Whether the column drifted.")
    status: str = Field(default="Checked", description="Checked, MissingInCurrent, MissingInReference or NoData.")


class RetrainRecord(ApiModel):
    """One retrain the monitor started."""

    time: datetime = Field(description="When it started.")
    training_run: str = Field(description="TrainingRun it created.")
    reason: str = Field(default="", description="Why.")


class DriftMonitorStatus(CommonStatus):
    """The last check."""

    verdict: Literal["NoDrift", "Drift", "InsufficientData"] | None = Field(default=None, description="Last verdict.")
    drift_share: float | None = Field(default=None, ge=0, le=1, description="Share of drifted columns.")
    features: list[FeatureDrift] = Field(
        default_factory=list, max_length=50, description="Per-column results, drifted first, the largest scores first."
    )
    live_accuracy: float | None = Field(default=None, ge=0, le=1, description="Accuracy on feedback.")
    labelled_samples: int | None = Field(default=None, description="Feedback joined to logged predictions.")
    samples: int | None = Field(default=None, description="Current samples in the last check.")
    prediction_drifted: bool | None = Field(default=None, description="Whether the model's predictions drifted.")
    window_start: datetime | None = Field(default=None, description="Start of the last check's window.")
    window_end: datetime | None = Field(default=None, description="End of the last check's window.")
    reference: str | None = Field(default=None, description="Reference Dataset version of the last check.")
    last_check: datetime | None = Field(default=None, description="When the last check ran.")
    check: str | None = Field(default=None, description="The check in flight, or the last one folded into status.")
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

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


class RetrainData(ApiModel):
    """What a retrain trains on: the labelled logged traffic, merged with the served model's training data."""

    window: Duration | None = Field(
        default=None, description="Labelled traffic from this far back; the check window when omitted."
    )
    merge: Literal["append", "replace"] = Field(
        default="append",
        description="append: the served model's training data plus the labelled traffic; replace: the traffic only.",
    )
    min_labelled: int = Field(
        default=100, ge=1, description="Labelled requests the last check must have seen before a retrain starts."
    )
    max_labelled: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Most labelled rows of traffic one retrain takes (the newest are kept); no cap when omitted.",
    )
    max_source_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Largest share of the harvested rows one feedback source (client address) may contribute; "
        "a source's rows beyond it are left out (its newest kept). No cap when omitted.",
    )


class Retrain(ApiModel):
    """The closed loop: a new Dataset version from labelled traffic, a TrainingRun, a canary, a promotion."""

    cooldown: Duration = Field(default="6h", description="Least time between the starts of two retrains.")
    data: RetrainData = Field(default_factory=RetrainData, description="The retrain's data.")
    training_run_template: dict[str, Any] = Field(
        default_factory=dict,
        description="TrainingRun spec fields merged over the spec of the run that trained the served model.",
    )


class DriftMonitorSpec(ApiModel):
    """What to watch and what to do about drift."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule("self.action != 'retrain' || has(self.retrain)", "action retrain needs spec.retrain"),
                rule(
                    "self.action != 'retrain' || has(self.deployment)",
                    "action retrain needs spec.deployment: the loop retrains what it serves",
                ),
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


RetrainPhase = Literal["Waiting", "Harvesting", "Publishing", "Training", "Canary", "Promoted", "RolledBack", "Failed"]


class RetrainRecord(ApiModel):
    """One retrain the monitor started, and how far it got."""

    name: str = Field(max_length=63, description="Its name: the harvest run and the TrainingRun are named after it.")
    episode: str = Field(max_length=253, description="The check that opened the drift episode it answers.")
    time: datetime = Field(description="When it started.")
    reason: str = Field(default="", max_length=1024, description="Why.")
    phase: RetrainPhase = Field(
        default="Harvesting",
        description="Harvesting, Publishing, Training, Canary, then Promoted, RolledBack or Failed.",
    )
    message: str = Field(default="", max_length=1024, description="What happened last.")
    data_uri: str | None = Field(default=None, max_length=2048, description="The labelled traffic merged for it.")
    dataset: str | None = Field(default=None, max_length=253, description="Dataset its data was published to.")
    dataset_version: str | None = Field(default=None, description="The Dataset version it trained on.")
    training_run: str | None = Field(default=None, max_length=253, description="TrainingRun it created.")
    model_version: int | None = Field(default=None, ge=1, description="Model version it registered.")
    finished: datetime | None = Field(default=None, description="When it ended.")


class Episode(ApiModel):
    """A drift episode: from the check that found drift (or low accuracy) until a check finds none."""

    check: str = Field(max_length=253, description="The check that opened it.")
    since: datetime = Field(description="When it opened.")
    reason: str = Field(default="", max_length=1024, description="What the check found.")
    model_version: int | None = Field(default=None, description="The version serving most traffic then.")


class DriftMonitorStatus(CommonStatus):
    """The last check."""

    verdict: Literal["NoDrift", "Drift", "InsufficientData"] | None = Field(default=None, description="Last verdict.")
    drift_share: float | None = Field(default=None, ge=0, le=1, description="Share of drifted columns.")
    features: list[FeatureDrift] = Field(
        default_factory=list, max_length=50, description="Per-column results, drifted first, the largest scores first."
    )
    live_accuracy: float | None = Field(default=None, ge=0, le=1, description="Accuracy on feedback.")
    live_mae: float | None = Field(
        default=None, ge=0, description="A regressor's mean absolute error on feedback (it has no accuracy)."
    )
    labelled_samples: int | None = Field(default=None, description="Feedback joined to logged predictions.")
    samples: int | None = Field(default=None, description="Current samples in the last check.")
    prediction_drifted: bool | None = Field(default=None, description="Whether the model's predictions drifted.")
    window_start: datetime | None = Field(default=None, description="Start of the last check's window.")
    window_end: datetime | None = Field(default=None, description="End of the last check's window.")
    reference: str | None = Field(default=None, description="Reference Dataset version of the last check.")
    last_check: datetime | None = Field(default=None, description="When the last check ran.")
    check: str | None = Field(default=None, description="The check in flight, or the last one folded into status.")
    report_uri: str | None = Field(default=None, description="HTML report of the last check.")
    episode: Episode | None = Field(default=None, description="The drift episode in progress, if any.")
    retrains: list[RetrainRecord] = Field(
        default_factory=list, max_length=20, description="Retrains started, oldest first."
    )


class DriftMonitor(Resource):
    """Statistical drift of live traffic against the training reference."""

    kind_name: ClassVar[str] = "DriftMonitor"
    plural: ClassVar[str] = "driftmonitors"
    short_names: ClassVar[list[str]] = ["dm"]
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Deployment", "type": "string", "jsonPath": ".spec.deployment"},
        {"name": "Verdict", "type": "string", "jsonPath": ".status.verdict"},
        {"name": "Drift", "type": "number", "jsonPath": ".status.driftShare"},
        {"name": "Retrain", "type": "string", "jsonPath": ".status.retrains[-1:].phase", "priority": 1},
        ready_column(),
        reason_column(),
        age_column(),
    ]

    kind: Literal["DriftMonitor"] = "DriftMonitor"
    spec: DriftMonitorSpec = Field(description="What to watch and what to do about drift.")
    status: DriftMonitorStatus = Field(default_factory=DriftMonitorStatus, description="Observed state.")

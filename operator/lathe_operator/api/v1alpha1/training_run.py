"""The ``TrainingRun`` kind: one reproducible training pipeline run and the model it registers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .common import (
    DATASET_VERSION,
    ApiModel,
    CommonStatus,
    Name,
    Resource,
    Toleration,
    age_column,
    ready_column,
    reason_column,
    rule,
)

QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
IMMUTABLE = rule("self == oldSelf", "is immutable: create a new TrainingRun instead")


class DatasetRef(ApiModel):
    """A Dataset in the same namespace; the version is pinned at start when omitted."""

    name: Name = Field(description="Dataset name.")
    version: str | None = Field(
        default=None, pattern=DATASET_VERSION, description="Version id; defaults to the current one, then pinned."
    )


class Hyperparameters(ApiModel):
    """The trainer's knobs, bounded so that a typo cannot ask for a week of training or a terabyte of weights;
    unset ones take the trainer's defaults (hidden [128, 64], epochs 20, lr 0.001, batchSize 64, none else)."""

    hidden: list[Annotated[int, Field(ge=1, le=8192)]] | None = Field(
        default=None, max_length=16, description="Hidden layer widths (mlp), 1-8192 each, at most 16 layers."
    )
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="Passes over the training split.")
    lr: float | None = Field(default=None, gt=0, le=10, description="Adam's learning rate.")
    batch_size: int | None = Field(default=None, ge=1, le=1_000_000, description="Rows per optimiser step.")
    weight_decay: float | None = Field(default=None, ge=0, le=1, description="Adam's weight decay.")
    dropout: float | None = Field(default=None, ge=0, lt=1, description="Dropout after each hidden layer.")


class ModelSpec(ApiModel):
    """What to train: a PyTorch architecture (type, hyperparameters) or a scikit-learn API classifier
    (scikit-learn's, XGBoost's or LightGBM's: estimator, parameters); either way exported to ONNX, checked for
    parity, gated and registered alike."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule(
                    "self.framework != 'sklearn' || has(self.estimator)",
                    "framework sklearn needs estimator: a scikit-learn classifier's class name",
                    fieldPath=".estimator",
                ),
                rule(
                    "self.framework != 'pytorch' || (!has(self.estimator) && !has(self.parameters))",
                    "estimator and parameters are for frameworks sklearn, xgboost and lightgbm; "
                    "pytorch takes type and hyperparameters",
                    fieldPath=".framework",
                ),
                rule(
                    "self.framework == 'pytorch' || !has(self.hyperparameters)",
                    "hyperparameters are PyTorch's; a scikit-learn, XGBoost or LightGBM estimator takes parameters",
                    fieldPath=".hyperparameters",
                ),
                rule(
                    "self.framework != 'xgboost' || !has(self.estimator) "
                    "|| self.estimator == (self.task == 'regression' ? 'XGBRegressor' : 'XGBClassifier')",
                    "framework xgboost takes estimator XGBClassifier (classification) or XGBRegressor "
                    "(regression), the default for the task",
                    fieldPath=".estimator",
                ),
                rule(
                    "self.framework != 'lightgbm' || !has(self.estimator) "
                    "|| self.estimator == (self.task == 'regression' ? 'LGBMRegressor' : 'LGBMClassifier')",
                    "framework lightgbm takes estimator LGBMClassifier (classification) or LGBMRegressor "
                    "(regression), the default for the task",
                    fieldPath=".estimator",
                ),
                rule(
                    "self.task != 'regression' || self.framework != 'pytorch' || self.type == 'mlp'",
                    "logistic is a classifier: regression trains an mlp (hidden: [] for a linear model)",
                    fieldPath=".type",
                ),
            ]
        }
    }

    name: Name = Field(description="Registered model name; versions are numbered under it.")
    task: Literal["classification", "regression"] = Field(
        default="classification",
        description="classification (class probabilities from logits) or regression (a value per row).",
    )
    framework: Literal["pytorch", "sklearn", "xgboost", "lightgbm"] = Field(
        default="pytorch",
        description="pytorch (type, hyperparameters), or sklearn, xgboost or lightgbm (estimator, parameters).",
    )
    type: Literal["mlp", "logistic"] = Field(default="mlp", description="PyTorch architecture: mlp or logistic.")
    hyperparameters: Hyperparameters = Field(
        default_factory=Hyperparameters, description="e.g. hidden: [128, 64], epochs: 20, lr: 0.001, batchSize: 64."
    )
    estimator: str | None = Field(
        default=None,
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        max_length=64,
        description="Estimator class: scikit-learn's, e.g. RandomForestClassifier or RandomForestRegressor "
        "(required for sklearn); XGBClassifier or XGBRegressor (xgboost's default for the task); LGBMClassifier "
        "or LGBMRegressor (lightgbm's).",
    )
    parameters: dict[str, Any] | None = Field(
        default=None,
        max_length=64,
        description="The estimator's constructor arguments (numbers, strings, booleans), e.g. n_estimators: 200; "
        "random_state defaults to seed.",
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed for the split, initialisation and shuffling.")

    @property
    def classifier(self) -> str | None:
        """The estimator class to train; XGBoost's and LightGBM's have a default."""
        return self.estimator or DEFAULT_ESTIMATORS.get((self.framework, self.task))

    def dump(self) -> dict[str, Any]:
        """As written: a scikit-learn API model without PyTorch's defaults (type, hyperparameters), which the
        API server would refuse in a TrainingRun made from it (a retrain) and a card would misreport."""
        found = super().dump()
        if self.framework != "pytorch":
            found.pop("type", None)
            found.pop("hyperparameters", None)
        return found


DEFAULT_ESTIMATORS = {
    ("xgboost", "classification"): "XGBClassifier",
    ("xgboost", "regression"): "XGBRegressor",
    ("lightgbm", "classification"): "LGBMClassifier",
    ("lightgbm", "regression"): "LGBMRegressor",
}


class TrainerSpec(ApiModel):
    """The team's own training code in a container. It reads the pinned version's train and validation
    splits from $LATHE_INPUT (train.parquet, validation.parquet, schema.json) and writes model.onnx, and
    optionally metrics.json, to $LATHE_OUTPUT; Lathe then evaluates the ONNX model on the held-out test split,
    gates and registers it as it does its own. With the local and Job pipeline backends the command runs as a
    process where the pipeline runs (the image is not used): docs/training.md."""

    image: str = Field(min_length=1, max_length=512, description="Container image, e.g. ghcr.io/acme/trainer:1.4.")
    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        min_length=1, max_length=64, description="Entrypoint and its arguments, e.g. [python, train.py]."
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=256, description="More arguments, after command's."
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        max_length=64,
        description="Extra environment variables (LATHE_* are Lathe's).",
        json_schema_extra={
            "x-kubernetes-validations": [
                rule("self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))", "env names are letters, digits and _"),
                rule("!self.exists(k, k.startsWith('LATHE_'))", "env names starting LATHE_ are Lathe's"),
            ]
        },
    )
    working_dir: str | None = Field(default=None, max_length=1024, description="Working directory of the command.")


class TrainingResources(ApiModel):
    """The node pool and resources of the training step."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule("!has(self.acceleratorType) || self.gpus > 0", "acceleratorType needs gpus > 0", fieldPath=".gpus")
            ]
        }
    }

    gpus: int = Field(default=0, ge=0, le=16, description="GPUs for the training step.")
    accelerator_type: str | None = Field(
        default=None, max_length=128, description="e.g. nvidia-tesla-t4; becomes the accelerator node selector."
    )
    cpu: str | None = Field(default=None, max_length=32, pattern=QUANTITY, description="CPU limit, e.g. 2 or 500m.")
    memory: str | None = Field(default=None, max_length=32, pattern=QUANTITY, description="Memory limit, e.g. 4Gi.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the training pod needs.")
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32, description="Taints it tolerates.")


class Gate(ApiModel):
    """A metric range the new model must land in; maxRegression is against the baseline."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule(
                    "has(self.min) || has(self.max) || has(self.maxRegression)",
                    "a gate needs at least one of min, max or maxRegression",
                ),
                rule("!has(self.min) || !has(self.max) || self.min <= self.max", "gate min must be <= max"),
            ]
        }
    }

    metric: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="accuracy, macro_f1, loss..."
    )
    min: float | None = Field(default=None, description="Lowest acceptable value.")
    max: float | None = Field(default=None, description="Highest acceptable value.")
    max_regression: float | None = Field(
        default=None, ge=0, description="Largest allowed drop below the baseline model's value."
    )


class PipelineSettings(ApiModel):
    """Where and how the pipeline runs."""

    backend: Literal["kfp", "job", "local"] | None = Field(
        default=None,
        description="kfp (Kubeflow Pipelines API), job (kfp.local in one Job pod) or local (kfp.local in the"
        " operator's machine); the operator's default when empty.",
    )
    experiment: str | None = Field(
        default=None, max_length=128, description="KFP experiment; the namespace by default."
    )
    caching: bool = Field(default=False, description="Let kfp reuse cached step results.")


class TrainingRunSpec(ApiModel):
    """What to train, on which data, where, and what it must achieve."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule(
                    "!has(self.trainer) || (self.model.framework == 'pytorch' && !has(self.model.estimator) "
                    "&& !has(self.model.parameters) && !has(self.model.hyperparameters) && self.model.type == 'mlp')",
                    "a trainer trains the model itself: spec.model takes only name, task and seed",
                    fieldPath=".trainer",
                ),
            ]
        }
    }

    dataset: DatasetRef = Field(
        description="The data to train on.", json_schema_extra={"x-kubernetes-validations": [IMMUTABLE]}
    )
    model: ModelSpec = Field(
        description="Model name, type, hyperparameters and seed.",
        json_schema_extra={"x-kubernetes-validations": [IMMUTABLE]},
    )
    trainer: TrainerSpec | None = Field(
        default=None,
        description="Your own training code in a container, instead of model.framework's built-in training.",
        json_schema_extra={"x-kubernetes-validations": [IMMUTABLE]},
    )
    resources: TrainingResources = Field(default_factory=TrainingResources, description="Node pool and resources.")
    gates: list[Gate] = Field(default_factory=list, max_length=32, description="Metric ranges the model must pass.")
    baseline_version: int | None = Field(
        default=None, ge=1, description="Model version to compare with; the promoted one by default."
    )
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings, description="Pipeline backend settings.")


class GateResult(ApiModel):
    """How one gate came out."""

    metric: str = Field(description="Metric name.")
    value: float | None = Field(default=None, description="Measured value.")
    min: float | None = Field(default=None, description="Effective lower bound.")
    max: float | None = Field(default=None, description="Effective upper bound.")
    baseline: float | None = Field(default=None, description="Baseline model's value, if any.")
    passed: bool = Field(description="Whether the value is within its bounds.")


class RegisteredModel(ApiModel):
    """The model version this run registered."""

    name: str = Field(description="Model name.")
    version: int = Field(ge=1, description="Monotonic version number.")
    uri: str = Field(description="Location of model.onnx.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Checksum of model.onnx.")


class TrainingRunStatus(CommonStatus):
    """Where the run stands and what it produced."""

    dataset_version: str | None = Field(default=None, pattern=DATASET_VERSION, description="Pinned data version.")
    run_id: str | None = Field(default=None, max_length=256, description="Pipeline run id.")
    run_url: str | None = Field(default=None, max_length=2048, description="Run page in the Kubeflow UI.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Evaluation metrics.")
    gates: list[GateResult] = Field(default_factory=list, description="Gate results.")
    model: RegisteredModel | None = Field(default=None, description="The registered model version.")
    start_time: datetime | None = Field(default=None, description="When the run started.")
    completion_time: datetime | None = Field(default=None, description="When it finished.")


class TrainingRun(Resource):
    """A reproducible training pipeline run."""

    kind_name: ClassVar[str] = "TrainingRun"
    plural: ClassVar[str] = "trainingruns"
    short_names: ClassVar[list[str]] = ["tr"]
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Dataset", "type": "string", "jsonPath": ".spec.dataset.name"},
        {"name": "Accuracy", "type": "number", "jsonPath": ".status.metrics.accuracy"},
        {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
        {"name": "Version", "type": "integer", "jsonPath": ".status.model.version"},
        ready_column(),
        reason_column(),
        age_column(),
    ]

    kind: Literal["TrainingRun"] = "TrainingRun"
    spec: TrainingRunSpec = Field(description="What to train and what it must achieve.")
    status: TrainingRunStatus = Field(default_factory=TrainingRunStatus, description="Observed state.")

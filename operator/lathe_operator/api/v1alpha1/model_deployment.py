"""The ``ModelDeployment`` kind: a registered model put to work online, in batch, or at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from .common import (
    ApiModel,
    CommonStatus,
    Duration,
    Name,
    Resource,
    age_column,
    ready_column,
    reason_column,
    rule,
)
from .training_run import QUANTITY, DatasetRef

Percent = Field(ge=0, le=100, description="Share of requests, 0-100.")


class ModelRef(ApiModel):
    """A registered model version."""

    name: Name = Field(description="Registered model name.")
    version: int = Field(ge=1, description="Model version number.")


class Autoscaling(ApiModel):
    """Horizontal autoscaling of the serving pods."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule("self.minReplicas <= self.maxReplicas", "autoscaling.minReplicas must be <= maxReplicas")
            ]
        }
    }

    min_replicas: int = Field(default=1, ge=0, le=1000, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas.")
    target_concurrency: int = Field(default=8, ge=1, le=10000, description="In-flight requests per replica to aim for.")


class Analysis(ApiModel):
    """What a canary step must show before it is promoted."""

    window: Duration = Field(default="5m", description="Metrics window compared at each step.")
    min_requests: int = Field(default=200, ge=1, description="Requests the candidate needs before a decision.")
    max_error_rate: float = Field(default=0.01, ge=0, le=1, description="Highest candidate error rate.")
    max_p99_ms: float | None = Field(default=None, gt=0, description="Highest candidate p99 latency in milliseconds.")
    min_accuracy: float | None = Field(default=None, ge=0, le=1, description="Lowest live accuracy from feedback.")
    max_mae: float | None = Field(
        default=None,
        ge=0,
        description="A regressor's highest live mean absolute error from feedback, in the target's units "
        "(Lathe's model server; Seldon's executor reports no error).",
    )


class Canary(ApiModel):
    """A candidate version promoted step by step, or rolled back."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [rule("self.steps.isSorted()", "canary.steps must be ascending")]
        }
    }

    version: int = Field(ge=1, description="Candidate model version.")
    steps: list[int] = Field(
        default=[10, 50, 100],
        min_length=1,
        max_length=10,
        description="Candidate traffic percentages, ascending; 100 promotes.",
        json_schema_extra={"items": {"type": "integer", "minimum": 1, "maximum": 100}},
    )
    analysis: Analysis = Field(default_factory=Analysis, description="Promotion criteria.")


class Shadow(ApiModel):
    """A version that receives a copy of live traffic; its answers are logged, never returned."""

    version: int = Field(ge=1, description="Shadow model version.")


class TrafficSplit(ApiModel):
    """Share of live traffic for one model version."""

    version: int = Field(ge=1, description="Model version.")
    percent: int = Percent


class RequestLogging(ApiModel):
    """Sampled request/response logging to the object store."""

    sample_rate: float = Field(default=0.1, ge=0, le=1, description="Fraction of requests logged.")
    retention: Duration | None = Field(
        default=None,
        description="How long logged requests and feedback are kept (hour folders older than this are deleted, "
        "checked hourly); kept forever when omitted. Keep it longer than any DriftMonitor window that reads them.",
    )


class BatchSpec(ApiModel):
    """Offline scoring of a Dataset version."""

    dataset: DatasetRef = Field(description="Data to score.")
    chunk_rows: int = Field(default=65536, ge=1, le=10_000_000, description="Rows per scoring chunk.")


class EdgeSpec(ApiModel):
    """An edge bundle: model.onnx, metadata, checksums and a small runner."""

    quantize: bool = Field(default=False, description="Also ship an int8-quantized copy.")


class Transformer(ApiModel):
    """A container that transforms requests before the model (a Seldon TRANSFORMER node)."""

    name: Name = Field(description="Node name in the inference graph.")
    image: str = Field(min_length=1, max_length=512, description="Container image speaking the Seldon protocol.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")


class Graph(ApiModel):
    """The inference graph around the model: transformers run in order, the model last."""

    transformers: list[Transformer] = Field(default_factory=list, max_length=4, description="Applied in order.")


class ServingResources(ApiModel):
    """Requests and limits of each serving container."""

    cpu: str | None = Field(default=None, max_length=32, pattern=QUANTITY, description="CPU, e.g. 1 or 500m.")
    memory: str | None = Field(default=None, max_length=32, pattern=QUANTITY, description="Memory, e.g. 1Gi.")

    def container(self) -> dict[str, Any]:
        """A container's ``resources``: the same requests and limits (Guaranteed QoS), empty when unset."""
        wanted = {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory)) if v}
        return {"requests": wanted, "limits": wanted} if wanted else {}


class ModelDeploymentSpec(ApiModel):
    """Which model to serve and how."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule("self.mode != 'batch' || has(self.batch)", "mode batch needs spec.batch"),
                rule(
                    "self.mode == 'online' || (!has(self.canary) && !has(self.shadow) && !has(self.traffic))",
                    "canary, shadow and traffic apply to mode online only",
                ),
                rule(
                    "!has(self.canary) || self.canary.version != self.model.version",
                    "canary.version must differ from model.version",
                    fieldPath=".canary.version",
                ),
                rule(
                    "!has(self.shadow) || self.shadow.version != self.model.version",
                    "shadow.version must differ from model.version",
                    fieldPath=".shadow.version",
                ),
                rule("self.mode == 'online' || !has(self.graph)", "graph applies to mode online only"),
                rule(
                    "!has(self.shadow) || !has(self.canary) || self.shadow.version != self.canary.version",
                    "shadow.version must differ from canary.version",
                    fieldPath=".shadow.version",
                ),
                rule(
                    "!has(self.traffic) || self.traffic.all(a, self.traffic.exists_one(b, b.version == a.version))",
                    "traffic names each version once",
                    fieldPath=".traffic",
                ),
                rule("!(has(self.replicas) && has(self.autoscaling))", "set replicas or autoscaling, not both"),
                rule(
                    "!has(self.traffic) || self.traffic.map(t, t.percent).sum() == 100",
                    "traffic percentages must add up to 100",
                    fieldPath=".traffic",
                ),
                rule(
                    "!has(self.traffic) || self.traffic.all(t, t.version == self.model.version"
                    " || (has(self.canary) && t.version == self.canary.version))",
                    "traffic may name only model.version and canary.version",
                    fieldPath=".traffic",
                ),
            ]
        }
    }

    model: ModelRef = Field(description="The stable model version.")
    mode: Literal["online", "batch", "edge"] = Field(default="online", description="online, batch or edge.")
    replicas: int | None = Field(default=None, ge=0, le=1000, description="Fixed replica count (online).")
    autoscaling: Autoscaling | None = Field(default=None, description="Autoscaling instead of fixed replicas.")
    canary: Canary | None = Field(default=None, description="A candidate version promoted by metrics.")
    shadow: Shadow | None = Field(default=None, description="A version mirrored live traffic.")
    traffic: list[TrafficSplit] | None = Field(
        default=None, min_length=1, max_length=2, description="Manual traffic split; always wins over the canary."
    )
    logging: RequestLogging | None = Field(default=None, description="Sampled request logging.")
    resources: ServingResources = Field(default_factory=ServingResources, description="Serving container resources.")
    graph: Graph | None = Field(default=None, description="Transformers chained before the model (online, cluster).")
    batch: BatchSpec | None = Field(default=None, description="For mode batch.")
    edge: EdgeSpec | None = Field(default=None, description="For mode edge.")


class HistoryEntry(ApiModel):
    """One traffic decision."""

    time: datetime = Field(description="When it was made.")
    action: Literal["Deploy", "Step", "Promote", "Rollback", "Override"] = Field(description="What was done.")
    version: int = Field(ge=1, description="Version it concerned.")
    percent: int = Field(ge=0, le=100, description="Its traffic share afterwards.")
    reason: str = Field(default="", max_length=1024, description="Why.")
    by: str | None = Field(
        default=None, max_length=253, description="Who decided, for a decision taken by hand; unset: the analysis."
    )


class Figures(ApiModel):
    """One version's figures over the analysis window."""

    requests: float = Field(ge=0, description="Requests served in the window.")
    error_rate: float | None = Field(default=None, ge=0, le=1, description="Share of requests that failed.")
    p99_ms: float | None = Field(default=None, ge=0, description="99th percentile latency in milliseconds.")
    accuracy: float | None = Field(default=None, ge=0, le=1, description="Live accuracy from feedback.")
    mae: float | None = Field(default=None, ge=0, description="A regressor's live mean absolute error from feedback.")


class Measured(ApiModel):
    """The last analysis: what Prometheus said about the candidate and the stable version."""

    time: datetime = Field(description="When the figures were read.")
    candidate: Figures = Field(description="The candidate's figures.")
    stable: Figures | None = Field(default=None, description="The stable version's figures, if it served any.")


class CanaryStatus(ApiModel):
    """Where the canary stands."""

    version: int = Field(ge=1, description="Candidate model version.")
    percent: int = Field(ge=0, le=100, description="Candidate traffic share now.")
    phase: Literal["Progressing", "Promoted", "RolledBack"] = Field(description="Progressing, Promoted or RolledBack.")
    since: datetime = Field(description="When the current step began.")
    generation: int = Field(ge=0, description="metadata.generation the canary belongs to.")
    baseline: int | None = Field(
        default=None, ge=1, description="The stable version it was compared with: where an undo returns."
    )
    measured: Measured | None = Field(default=None, description="The figures of the last analysis.")


class StableStatus(ApiModel):
    """The version serving as stable: spec.model.version until a canary is promoted, then the promoted one.

    The operator never writes spec (a GitOps tool owns it): a promotion is recorded here and
    in the registry, and holds until spec.model.version itself is changed."""

    version: int = Field(ge=1, description="Stable model version: what traffic returns to on a rollback.")
    spec_version: int = Field(ge=1, description="spec.model.version when this was decided; another one takes over.")


class ModelDeploymentStatus(CommonStatus):
    """Where traffic goes and what is served."""

    endpoint: str | None = Field(default=None, max_length=2048, description="Prediction URL.")
    traffic: list[TrafficSplit] = Field(default_factory=list, description="Current split.")
    serving: str | None = Field(default=None, max_length=256, description="Served versions, e.g. 3:90,4:10.")
    history: list[HistoryEntry] = Field(default_factory=list, max_length=50, description="Recent decisions.")
    canary: CanaryStatus | None = Field(default=None, description="Canary progress.")
    stable: StableStatus | None = Field(default=None, description="The stable version and where it came from.")
    output_uri: str | None = Field(default=None, max_length=2048, description="Batch output or edge bundle location.")
    output_bytes: int | None = Field(default=None, ge=0, description="Size of the batch output or edge bundle.")
    rows_scored: int | None = Field(default=None, ge=0, description="Batch rows scored so far.")
    decision: str | None = Field(
        default=None,
        max_length=64,
        description="Id of the last decision taken by hand (annotation lathe.dev/decision) applied or refused.",
    )


class ModelDeployment(Resource):
    """A model served online, scored in batch, or bundled for the edge."""

    kind_name: ClassVar[str] = "ModelDeployment"
    plural: ClassVar[str] = "modeldeployments"
    short_names: ClassVar[list[str]] = ["md"]
    object_rules: ClassVar[list[dict[str, str]]] = Resource.object_rules + [
        {
            "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            "message": "metadata.name must start with a letter: it names the Service that serves the model",
        }
    ]
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Serving", "type": "string", "jsonPath": ".status.serving"},
        {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
        {"name": "Output", "type": "string", "jsonPath": ".status.outputUri", "priority": 1},
        ready_column(),
        reason_column(),
        age_column(),
    ]

    kind: Literal["ModelDeployment"] = "ModelDeployment"
    spec: ModelDeploymentSpec = Field(description="Which model to serve and how.")
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus, description="Observed state.")

"""Types shared by all four kinds: the camelCase base model, conditions, references.

Everything here ends up in the generated CRDs (see ``lathe_operator.api.crd``), so each
field carries a ``description`` that ``kubectl explain`` shows.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "lathe.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MESSAGE_MAX = 4096  # a condition message's limit in the CRD; reconcile.conditions cuts to it
# Whole units, at least one second: one non-zero part in s, m, h or d ("30s", "1h30m", "1s500ms"), so
# "0s" and "500ms" are refused where a period or window of that length would spin or divide by zero.
DURATION = r"^([0-9]+(ms|s|m|h|d))*[0-9]*[1-9][0-9]*(s|m|h|d)([0-9]+(ms|s|m|h|d))*$"
DATASET_VERSION = r"^sha256:[0-9a-f]{64}$"
# A label key (a taint's key): an optional DNS subdomain prefix and a name of at most 63 characters.
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
Duration = Annotated[str, Field(max_length=32, pattern=DURATION)]


def rule(expression: str, message: str, **extra: str) -> dict[str, str]:
    """One CEL ``x-kubernetes-validations`` entry, so the API server rejects what we reject."""
    return {"rule": expression, "message": message, **extra}


class ApiModel(BaseModel):
    """Base for every spec and status type: snake_case in Python, camelCase in YAML."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )

    def dump(self) -> dict[str, Any]:
        """The YAML/JSON form: camelCase keys, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ConditionStatus(str, Enum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Phase(str, Enum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    FAILED = "Failed"
    DEGRADED = "Degraded"


class Condition(ApiModel):
    """One observation of the object's state, as in Kubernetes API conventions."""

    type: str = Field(max_length=64, description="Ready, Progressing or Degraded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=128,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="One CamelCase word a machine can act on.",
    )
    message: str = Field(default="", max_length=MESSAGE_MAX, description="What happened, for people.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this condition was computed from."
    )


Conditions = Annotated[
    list[Condition],
    Field(
        max_length=16,
        description="Ready, Progressing and Degraded, each with a reason and a message.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


class CommonStatus(ApiModel):
    """Fields every Lathe status carries, which kubectl, Argo CD and dashboards read."""

    phase: Phase | None = Field(default=None, description="A one-word summary; conditions are the detail.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the operator last acted on."
    )
    conditions: Conditions = Field(default_factory=list)


class SecretRef(ApiModel):
    """Credentials live in a Secret in the object's namespace, never in the spec. The Secret must carry the label
    lathe.dev/credentials: "true", and only its keys accessKey and secretKey are read."""

    name: Name = Field(description='Name of the Secret; it must be labelled lathe.dev/credentials: "true".')
    # Only the documented keys: any other name would let a spec hand a run whatever a Secret holds.
    # The fields stay so objects the API server defaulted under earlier versions remain valid.
    access_key_key: Literal["accessKey"] = Field(
        default="accessKey", description="Key of the access key id in the Secret: always accessKey."
    )
    secret_key_key: Literal["secretKey"] = Field(
        default="secretKey", description="Key of the secret access key in the Secret: always secretKey."
    )


class Toleration(ApiModel):
    """A Kubernetes toleration for the node pool's pods; one a pod would refuse is refused here."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule(
                    "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                    "value must be empty when operator is Exists",
                    fieldPath=".value",
                ),
                rule(
                    "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                    "an empty key needs operator Exists (it then tolerates every taint)",
                    fieldPath=".operator",
                ),
                rule(
                    "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                    "tolerationSeconds needs effect NoExecute",
                    fieldPath=".tolerationSeconds",
                ),
            ]
        }
    }

    key: str | None = Field(
        default=None,
        max_length=253,
        pattern=QUALIFIED_NAME,
        description="Taint key to tolerate: a label key, such as nvidia.com/gpu.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Exists or Equal.")
    value: str | None = Field(
        default=None, max_length=63, pattern=LABEL_VALUE, description="Taint value for Equal: a label value."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty means all."
    )
    toleration_seconds: int | None = Field(default=None, ge=0, description="For NoExecute only.")


class Resource(ApiModel):
    """A Lathe custom resource: apiVersion, kind, metadata, spec, status.

    Subclasses set ``spec`` and ``status`` types and the CRD presentation below.
    """

    model_config = ConfigDict(extra="ignore")

    kind_name: ClassVar[str]
    plural: ClassVar[str]
    short_names: ClassVar[list[str]]
    printer_columns: ClassVar[list[dict[str, Any]]]
    # CEL on the whole object, where it may read metadata.name: the name labels Jobs, pods and
    # Services, whose label values stop at 63 characters.
    object_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "size(self.metadata.name) <= 63",
            "message": "metadata.name must be at most 63 characters: Lathe labels its Jobs and pods with it",
        }
    ]

    api_version: Literal["lathe.dev/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", "default"))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0) or 0)

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))


def ready_column() -> dict[str, Any]:
    return {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}


def reason_column() -> dict[str, Any]:
    return {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    }


def age_column() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

"""The ``Dataset`` kind: a source of data, its rules, and its immutable validated versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from .common import (
    DATASET_VERSION,
    ApiModel,
    CommonStatus,
    Duration,
    Resource,
    SecretRef,
    age_column,
    ready_column,
    reason_column,
    rule,
)

ColumnType = Literal["int", "float", "string", "bool", "category", "datetime"]


class ConfigMapSource(ApiModel):
    """Small data kept inline in a ConfigMap key; handy for examples and tests."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule("self.key != '.' && self.key != '..'", "source.configMap.key may not be . or ..", fieldPath=".key")
            ]
        }
    }

    name: str = Field(min_length=1, max_length=253, description="ConfigMap in the Dataset's namespace.")
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key whose value is the file content (a ConfigMap key: letters, digits, '-', '_' and '.').",
    )

    @field_validator("key")
    @classmethod
    def _not_a_directory(cls, key: str) -> str:
        if key in (".", ".."):
            raise ValueError("source.configMap.key may not be . or ..")
        return key


class DatasetSource(ApiModel):
    """Where the data comes from: exactly one of ``uri`` or ``configMap``."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule(
                    "has(self.uri) != has(self.configMap)", "exactly one of source.uri or source.configMap must be set"
                ),
                rule(
                    "!has(self.credentialsSecret) || (has(self.uri) && self.uri.startsWith('s3://'))",
                    "source.credentialsSecret applies to s3:// URIs only",
                ),
            ]
        }
    }

    uri: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,62}/.*|https?://.+|file:///.+|/.+)$",
        description="s3://bucket/key-or-prefix/, http(s)://host/path, or a local path (local mode).",
    )
    config_map: ConfigMapSource | None = Field(default=None, description="Inline data in a ConfigMap.")
    format: Literal["csv", "parquet"] = Field(
        default="csv", description="File format; a prefix of many files is one dataset."
    )
    credentials_secret: SecretRef | None = Field(
        default=None,
        description='Secret with S3 credentials (accessKey, secretKey), labelled lathe.dev/credentials: "true"; '
        "without one, Lathe's store keys, on the store's endpoint only and never for its own bucket.",
    )
    endpoint: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$",
        description="S3 endpoint host:port for s3:// URIs; Lathe's own store endpoint when empty. "
        "Another endpoint must be in the operator's LATHE_SOURCE_ENDPOINTS.",
    )
    secure: bool | None = Field(default=None, description="Use TLS for the S3 endpoint; as Lathe's store when empty.")


class ColumnSchema(ApiModel):
    """A declared column; declared columns become Great Expectations expectations."""

    name: str = Field(min_length=1, max_length=256, description="Column name as in the file header.")
    type: ColumnType = Field(description="int, float, string, bool, category or datetime.")
    nullable: bool = Field(default=True, description="Whether missing values are allowed.")


class Expectation(ApiModel):
    """One Great Expectations expectation by name, with its keyword arguments."""

    type: str = Field(
        max_length=128,
        pattern=r"^expect_[a-z0-9_]+$",
        description="GX expectation name, e.g. expect_column_values_to_be_between.",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the expectation.")


def _cron_field(value: str) -> str:
    """One cron field: ``*`` or a value or range, each with an optional step, comma-separated."""
    item = rf"(\*|{value}(-{value})?)(/[1-9][0-9]*)?"
    return rf"{item}(,{item})*"


# What reconcile.schedule reads, field by field in range; what a pattern cannot see (5-3, a
# February 30th) reaches the Dataset as an InvalidSchedule condition.
CRON = (
    "^"
    + r"\s+".join(
        _cron_field(v)
        for v in (r"[0-5]?[0-9]", r"(1?[0-9]|2[0-3])", r"(0?[1-9]|[12][0-9]|3[01])", r"(0?[1-9]|1[0-2])", r"[0-7]")
    )
    + "$"
)


class Refresh(ApiModel):
    """How often to re-read the source; a new version is published only when content changed."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule(
                    "has(self.interval) != has(self.cron)",
                    "exactly one of refresh.interval or refresh.cron must be set",
                )
            ]
        }
    }

    interval: Duration | None = Field(default=None, description="e.g. 30m, 1h, 1d.")
    cron: str | None = Field(
        default=None,
        max_length=128,
        pattern=CRON,
        description="Five-field cron schedule: minute hour day-of-month month day-of-week.",
    )


class Retention(ApiModel):
    """How many versions to keep; versions still referenced are never deleted."""

    keep: int = Field(default=10, ge=1, le=1000, description="Newest versions to keep.")
    delete_on_removal: bool = Field(
        default=False, description="Delete the stored versions when the Dataset is deleted."
    )


class DatasetSpec(ApiModel):
    """What the data is and the rules it must pass."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                rule(
                    "!has(self.target) || !has(self.schema) || self.schema.exists(c, c.name == self.target)",
                    "target must be one of the declared schema columns",
                    fieldPath=".target",
                )
            ]
        }
    }

    source: DatasetSource = Field(description="Where the data comes from.")
    target: str | None = Field(default=None, max_length=256, description="Label column, if any.")
    schema_: list[ColumnSchema] | None = Field(
        default=None,
        alias="schema",
        max_length=1024,
        description="Declared columns; inferred and recorded when omitted.",
    )
    expectations: list[Expectation] = Field(
        default_factory=list, max_length=512, description="Great Expectations rules every version must pass."
    )
    refresh: Refresh | None = Field(default=None, description="Periodic re-read of the source.")
    retention: Retention = Field(default_factory=Retention, description="How many versions to keep.")


class ValidationSummary(ApiModel):
    """Great Expectations counts for the last ingest, and the first failures in plain words."""

    evaluated: int = Field(default=0, ge=0, description="Expectations evaluated.")
    successful: int = Field(default=0, ge=0, description="Expectations that passed.")
    failed: int = Field(default=0, ge=0, description="Expectations that failed.")
    failures: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="First failures, in plain words.",
        json_schema_extra={"items": {"type": "string", "maxLength": 1024}},
    )


class VersionRecord(ApiModel):
    """One published (or refused) version."""

    version: str = Field(pattern=DATASET_VERSION, description="Content address of the version.")
    time: datetime = Field(description="When it was ingested.")
    rows: int = Field(ge=0, description="Row count.")
    validation: Literal["Passed", "Failed"] = Field(description="Great Expectations verdict.")


class IngestRun(ApiModel):
    """One ingest run: a Job in a cluster, a process locally; named deterministically."""

    name: str = Field(max_length=253, description="Run (and Job) name.")
    attempt: int = Field(default=0, ge=0, description="Retry number after transient failures.")
    outcome: Literal["Running", "Published", "Unchanged", "Failed"] = Field(description="How it ended, or Running.")
    reason: str = Field(default="", max_length=128, description="Condition reason it produced.")
    message: str = Field(default="", max_length=4096, description="What happened.")
    transient: bool = Field(default=False, description="Whether a failure is retried with back-off.")
    started_at: datetime | None = Field(default=None, description="When the operator started it.")
    finished_at: datetime | None = Field(default=None, description="When it ended.")


class DatasetStatus(CommonStatus):
    """What the operator observed and published."""

    current_version: str | None = Field(default=None, pattern=DATASET_VERSION, description="Newest valid version.")
    uri: str | None = Field(default=None, max_length=2048, description="Store location of the current version.")
    rows: int | None = Field(default=None, ge=0, description="Rows in the current version.")
    columns: int | None = Field(default=None, ge=0, description="Columns in the current version.")
    validation: ValidationSummary | None = Field(default=None, description="Result of the last validation.")
    history: list[VersionRecord] = Field(
        default_factory=list, max_length=50, description="Recent versions, newest first."
    )
    last_run: IngestRun | None = Field(default=None, description="The latest ingest run.")


class Dataset(Resource):
    """An immutable, content-addressed, validated and profiled dataset."""

    kind_name: ClassVar[str] = "Dataset"
    plural: ClassVar[str] = "datasets"
    short_names: ClassVar[list[str]] = ["ds"]
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Version", "type": "string", "jsonPath": ".status.currentVersion"},
        {"name": "Rows", "type": "integer", "jsonPath": ".status.rows"},
        ready_column(),
        reason_column(),
        age_column(),
    ]

    kind: Literal["Dataset"] = "Dataset"
    spec: DatasetSpec = Field(description="What the data is and the rules it must pass.")
    status: DatasetStatus = Field(default_factory=DatasetStatus, description="Observed state.")

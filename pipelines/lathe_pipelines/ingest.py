"""One ingest run: read the source, apply the schema, validate, version, profile, publish.

Runs inside the ingest Job (cluster) or a local process (local mode) as ``lathe ingest``.
It always ends by writing a run report the operator reads; a failed validation publishes
nothing, and identical content publishes nothing new.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lathe_core import __version__, layout
from lathe_core.clock import stamp
from lathe_core.datasets import DatasetVersions
from lathe_core.store import ObjectStore, dumps

from .steps import profile as profiling
from .steps import schema as schemas
from .steps.errors import IngestError, SchemaMismatch, ValidationFailed
from .steps.read import S3Access, read_source
from .steps.validate import BackgroundValidator
from .steps.version import content_version, to_arrow


@dataclass(frozen=True)
class IngestRequest:
    namespace: str
    name: str
    run: str
    spec: dict[str, Any]  # DatasetSpec in its YAML (camelCase) form
    parent_version: str | None = None
    source_path: str | None = None  # a ConfigMap source, mounted or written to a file


def ingest(request: IngestRequest, store: ObjectStore, s3: S3Access | None) -> dict[str, Any]:
    """Do the run and return its report (also written to the store)."""
    versions = DatasetVersions(store, request.namespace, request.name)
    started = time.monotonic()
    report: dict[str, Any] = {"run": request.run, "startedAt": stamp()}
    validator = BackgroundValidator()  # forked first: it imports Great Expectations while we read
    try:
        report.update(_ingest(request, versions, s3, validator))
    except IngestError as error:
        report.update(outcome="Failed", reason=error.reason, message=str(error), transient=error.transient)
        if isinstance(error, ValidationFailed):
            report["validation"] = error.summary
    finally:
        validator.close()
    report["finishedAt"] = stamp()
    report["seconds"] = round(time.monotonic() - started, 3)
    versions.put_report(request.run, report)
    return report


def _parquet(table: pa.Table) -> bytes:
    """zstd Parquet; dictionary encoding only for strings, where it pays (floats rarely repeat)."""
    strings = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", use_dictionary=strings or False)
    return buffer.getvalue()


def _ingest(
    request: IngestRequest, versions: DatasetVersions, s3: S3Access | None, validator: BackgroundValidator
) -> dict[str, Any]:
    spec = request.spec
    source = spec["source"]
    uri, fmt = request.source_path or source["uri"], source.get("format", "csv")
    frame = read_source(uri, fmt, s3, operator_file=request.source_path is not None)
    frame, schema = schemas.apply(frame, spec.get("schema"))
    target = spec.get("target")
    if target and target not in frame.columns:
        raise SchemaMismatch(f"target column {target} is not in the data")
    table = to_arrow(frame)
    version = content_version(table)
    summary_base = {
        "version": version,
        "rows": len(frame),
        "columns": len(frame.columns),
        "uri": versions.store.uri(versions.key(version, "")),
    }
    if versions.exists(version):
        return {
            "outcome": "Unchanged",
            "reason": "Unchanged",
            **summary_base,
            "validation": versions.manifest(version).get("validation"),
            "message": f"Content unchanged: {version} is already published",
        }
    rules = (schemas.expectations(schema) if spec.get("schema") else []) + list(spec.get("expectations") or [])
    validator.submit(table, rules)
    parquet = _parquet(table)  # meanwhile: encode and profile
    profile = dumps(profiling.profile(frame, schema, target))
    result = validator.result()
    summary = result["lathe"]
    if summary["failed"]:
        first = summary["failures"][0] if summary["failures"] else "see validation.json"
        versions.put_failed_validation(request.run, result)
        raise ValidationFailed(f"{summary['failed']} of {summary['evaluated']} expectations failed: {first}", summary)
    files = {layout.DATA: parquet, layout.PROFILE: profile, layout.VALIDATION: dumps(result)}
    manifest = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "DatasetVersion",
        "dataset": {"namespace": request.namespace, "name": request.name},
        "version": version,
        "parentVersion": request.parent_version,
        "source": {"uri": source.get("uri") or "configmap", "format": source.get("format", "csv")},
        "schema": schema,
        "target": target,
        "rows": len(frame),
        "columns": len(frame.columns),
        "createdAt": stamp(),
        "validation": summary,
        "files": {name: {"size": len(data)} for name, data in files.items()},
        "latheVersion": __version__,
        "run": request.run,
    }
    versions.publish(version, files, manifest)
    return {
        "outcome": "Published",
        "reason": "Published",
        **summary_base,
        "validation": summary,
        "message": f"Published {version} ({len(frame)} rows)",
    }

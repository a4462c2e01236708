"""One ingest run: read the source, apply the schema, validate, version, profile, publish.

Runs inside the ingest Job (cluster) or a local process (local mode) as ``lathe ingest``.
It always ends by writing a run report the operator reads; a failed validation publishes
nothing, and identical content publishes nothing new. The source is streamed in chunks
into a local data.parquet and the version hash (``steps/stream.py``), then validated and
profiled from that file, so memory does not grow with the row count.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lathe_core import __version__, layout
from lathe_core.clock import stamp
from lathe_core.datasets import DatasetVersions
from lathe_core.store import ObjectStore, dumps

from .steps import profile as profiling
from .steps import schema as schemas
from .steps import scratch
from .steps.errors import IngestError, SchemaMismatch, ValidationFailed
from .steps.read import S3Access, read_source, source_files
from .steps.stream import NotStreamable, Sink, Streamed, stream
from .steps.validate import BackgroundValidator
from .steps.version import to_arrow

# Sources up to this size are also written to an Arrow stream in memory-backed /dev/shm while
# the Parquet file is written, then validated as one frame and profiled from it; larger ones
# are validated (in column groups, steps/validate.py) and profiled from the Parquet file.
VALIDATE_WHOLE_BYTES = 256 * 2**20


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


def _in_memory(
    uri: str,
    fmt: str,
    s3: S3Access | None,
    operator_file: bool,
    declared: list[dict[str, Any]] | None,
    path: Path,
    ipc: Path | None,
) -> Streamed:
    """The whole source read at once, for what ``stream`` cannot reproduce chunk by chunk; the same Parquet and id."""
    frame, schema = schemas.apply(read_source(uri, fmt, s3, operator_file=operator_file), declared)
    table = to_arrow(frame)
    sink = Sink(table.schema, path, ipc)
    try:
        sink.write(table)
    finally:
        sink.close()
    return Streamed(sink.version.hexdigest(), sink.rows, table.schema.names, schema, sink.nulls)


def _ingest(
    request: IngestRequest, versions: DatasetVersions, s3: S3Access | None, validator: BackgroundValidator
) -> dict[str, Any]:
    workdir = scratch.directory("lathe-ingest-")
    try:
        return _ingest_in(request, versions, s3, validator, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _ingest_in(
    request: IngestRequest,
    versions: DatasetVersions,
    s3: S3Access | None,
    validator: BackgroundValidator,
    workdir: Path,
) -> dict[str, Any]:
    """Stream the source into ``workdir``/data.parquet while hashing it, then validate and profile from that file."""
    spec = request.spec
    source = spec["source"]
    uri, fmt = request.source_path or source["uri"], source.get("format", "csv")
    operator_file = request.source_path is not None
    parquet = workdir / layout.DATA
    files = source_files(uri, fmt, s3, operator_file=operator_file, workdir=workdir)
    whole = sum(len(d) if isinstance(d, bytes) else d.stat().st_size for _, d in files) <= VALIDATE_WHOLE_BYTES
    ipc = validator.scratch / "table.arrow" if whole else None
    try:
        data = stream(files, fmt, spec.get("schema"), parquet, uri, ipc)
    except NotStreamable:
        data = _in_memory(uri, fmt, s3, operator_file, spec.get("schema"), parquet, ipc)
    version, schema = data.version, data.schema
    target = spec.get("target")
    if target and target not in data.columns:
        raise SchemaMismatch(f"target column {target} is not in the data")
    summary_base = {
        "version": version,
        "rows": data.rows,
        "columns": len(data.columns),
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
    validator.submit(ipc or parquet, rules)
    # meanwhile, from the memory-mapped Arrow stream where there is one (no Parquet decoding)
    profile = dumps(
        profiling.profile_arrow(ipc, schema, target) if ipc else profiling.profile_parquet(parquet, schema, target)
    )
    result = validator.result()
    summary = result["lathe"]
    if summary["failed"]:
        first = summary["failures"][0] if summary["failures"] else "see validation.json"
        versions.put_failed_validation(request.run, result)
        raise ValidationFailed(f"{summary['failed']} of {summary['evaluated']} expectations failed: {first}", summary)
    published: dict[str, bytes | Path] = {
        layout.DATA: parquet,
        layout.PROFILE: profile,
        layout.VALIDATION: dumps(result),
    }
    manifest = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "DatasetVersion",
        "dataset": {"namespace": request.namespace, "name": request.name},
        "version": version,
        "parentVersion": request.parent_version,
        "source": {"uri": source.get("uri") or "configmap", "format": source.get("format", "csv")},
        "schema": schema,
        "target": target,
        "rows": data.rows,
        "columns": len(data.columns),
        "createdAt": stamp(),
        "validation": summary,
        "files": {name: {"size": _size(body)} for name, body in published.items()},
        "latheVersion": __version__,
        "run": request.run,
    }
    versions.publish(version, published, manifest)
    return {
        "outcome": "Published",
        "reason": "Published",
        **summary_base,
        "validation": summary,
        "message": f"Published {version} ({data.rows} rows)",
    }


def _size(body: bytes | Path) -> int:
    return body.stat().st_size if isinstance(body, Path) else len(body)

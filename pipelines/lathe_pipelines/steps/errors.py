"""Ingest failures, each with the condition reason a user can act on."""

from __future__ import annotations


class IngestError(Exception):
    """A failure the user can act on; ``reason`` becomes the Ready condition's reason."""

    reason = "IngestFailed"
    transient = False


class SourceNotFound(IngestError):
    reason = "SourceNotFound"
    transient = True  # the file may not have been uploaded yet


class SourceUnavailable(IngestError):
    reason = "SourceUnavailable"
    transient = True


class SourceAccessDenied(IngestError):
    reason = "SourceAccessDenied"


class MalformedData(IngestError):
    reason = "MalformedData"


class EmptyData(IngestError):
    reason = "EmptyData"


class SchemaMismatch(IngestError):
    reason = "SchemaMismatch"


class InvalidExpectation(IngestError):
    reason = "InvalidExpectation"


class ValidationFailed(IngestError):
    reason = "ValidationFailed"

    def __init__(self, message: str, summary: dict[str, object]) -> None:
        super().__init__(message)
        self.summary = summary


class TrainingFailed(Exception):
    """A training-pipeline failure with the condition reason a user can act on (NaNLoss, ParityMismatch...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

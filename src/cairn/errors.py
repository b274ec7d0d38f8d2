"""Cairn's exception tree; each class carries the wire error code and HTTP status.

    CairnError                    INTERNAL_ERROR            500
    ├── NotFoundError             RESOURCE_DOES_NOT_EXIST   404
    │   ├── TableNotFoundError    RESOURCE_DOES_NOT_EXIST   404
    │   └── TableVersionError     RESOURCE_DOES_NOT_EXIST   404
    ├── InvalidParameterError     INVALID_PARAMETER_VALUE   400
    │   ├── SearchSyntaxError     INVALID_PARAMETER_VALUE   400
    │   ├── UnsafePathError       INVALID_PARAMETER_VALUE   400
    │   ├── ModelFormatError      INVALID_PARAMETER_VALUE   400
    │   ├── ModelInputError       BAD_REQUEST               400
    │   ├── ProjectSpecError      INVALID_PARAMETER_VALUE   400
    │   └── SchemaMismatchError   INVALID_PARAMETER_VALUE   400
    ├── AlreadyExistsError        RESOURCE_ALREADY_EXISTS   400
    ├── InvalidStateError         INVALID_STATE             400
    ├── CommitConflictError       ABORTED                   409
    ├── UnauthenticatedError      UNAUTHENTICATED           401
    ├── PermissionDeniedError     PERMISSION_DENIED         403
    ├── RequestLimitExceededError REQUEST_LIMIT_EXCEEDED    429
    ├── UnavailableError          TEMPORARILY_UNAVAILABLE   503
    ├── ProjectExecutionError     INTERNAL_ERROR            500
    └── StoreError                INTERNAL_ERROR            500
        └── SchemaVersionError    INTERNAL_ERROR            500

The server turns these into ``{"error_code": ..., "message": ...}`` in one handler.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "CairnError",
    "CommitConflictError",
    "InvalidParameterError",
    "InvalidStateError",
    "ModelFormatError",
    "ModelInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProjectExecutionError",
    "ProjectSpecError",
    "RequestLimitExceededError",
    "SchemaMismatchError",
    "SchemaVersionError",
    "SearchSyntaxError",
    "StoreError",
    "TableNotFoundError",
    "TableVersionError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnsafePathError",
]


class CairnError(Exception):
    """Base of every error Cairn raises on purpose."""

    error_code: str = "INTERNAL_ERROR"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


class NotFoundError(CairnError):
    """A run, experiment, artifact or model that does not exist."""

    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class InvalidParameterError(CairnError):
    """A value the caller passed is malformed or out of range."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class SearchSyntaxError(InvalidParameterError):
    """A search filter or order-by clause that does not parse; carries the 0-based position."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        if position is not None and text:
            caret = " " * position + "^"
            message = f"{message} (at position {position})\n  {text}\n  {caret}"
        super().__init__(message)
        self.text = text
        self.position = position


class UnsafePathError(InvalidParameterError):
    """An artifact path that would escape its root (``..``, absolute, link out)."""


class ModelFormatError(InvalidParameterError):
    """A model folder that cannot be loaded: missing or corrupt MLmodel, unknown flavor."""


class ModelInputError(InvalidParameterError):
    """Scoring input that does not match the model's signature, or cannot be parsed."""

    error_code = "BAD_REQUEST"


class ProjectSpecError(InvalidParameterError):
    """An MLproject, python_env.yaml or parameter that does not validate; names file and line."""


class TableNotFoundError(NotFoundError):
    """A path or URI that holds no Delta table."""


class TableVersionError(NotFoundError):
    """A table version (or timestamp) that does not exist, or whose files were vacuumed."""


class SchemaMismatchError(InvalidParameterError):
    """Data whose columns do not match the table's schema; names every differing column."""


class AlreadyExistsError(CairnError):
    """Creating something whose name is taken."""

    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400


class InvalidStateError(CairnError):
    """The target exists but its state forbids the operation (finished or deleted run)."""

    error_code = "INVALID_STATE"
    http_status = 400


class CommitConflictError(CairnError):
    """A table commit that lost a race with a concurrent writer and could not be retried."""

    error_code = "ABORTED"
    http_status = 409


class UnauthenticatedError(CairnError):
    """No credentials, or credentials the server does not accept."""

    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDeniedError(CairnError):
    """The caller may not do this."""

    error_code = "PERMISSION_DENIED"
    http_status = 403


class RequestLimitExceededError(CairnError):
    """Too many requests, or a request larger than allowed."""

    error_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 429


class UnavailableError(CairnError):
    """A backend (database, server) cannot be reached right now."""

    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class ProjectExecutionError(CairnError):
    """A project that cannot be fetched or started: git, environment build, Docker or Spark."""


class StoreError(CairnError):
    """The backing store failed in a way the caller cannot fix by changing input."""


class SchemaVersionError(StoreError):
    """The database schema is of a version this Cairn cannot use."""

from __future__ import annotations

import pytest

from cairn import errors


@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        (errors.NotFoundError, "RESOURCE_DOES_NOT_EXIST", 404),
        (errors.InvalidParameterError, "INVALID_PARAMETER_VALUE", 400),
        (errors.SearchSyntaxError, "INVALID_PARAMETER_VALUE", 400),
        (errors.UnsafePathError, "INVALID_PARAMETER_VALUE", 400),
        (errors.ModelFormatError, "INVALID_PARAMETER_VALUE", 400),
        (errors.ModelInputError, "BAD_REQUEST", 400),
        (errors.ProjectSpecError, "INVALID_PARAMETER_VALUE", 400),
        (errors.ProjectExecutionError, "INTERNAL_ERROR", 500),
        (errors.AlreadyExistsError, "RESOURCE_ALREADY_EXISTS", 400),
        (errors.InvalidStateError, "INVALID_STATE", 400),
        (errors.PermissionDeniedError, "PERMISSION_DENIED", 403),
        (errors.RequestLimitExceededError, "REQUEST_LIMIT_EXCEEDED", 429),
        (errors.UnavailableError, "TEMPORARILY_UNAVAILABLE", 503),
        (errors.StoreError, "INTERNAL_ERROR", 500),
    ],
)
def test_each_error_carries_code_and_status(
    cls: type[errors.CairnError], code: str, status: int
) -> None:
    error = cls("something went wrong")
    assert isinstance(error, errors.CairnError)
    assert (error.error_code, error.http_status) == (code, status)
    assert error.to_dict() == {"error_code": code, "message": "something went wrong"}


def test_search_syntax_error_points_at_position() -> None:
    error = errors.SearchSyntaxError("expected a value", "metrics.a < ", 12)
    assert error.position == 12
    assert "(at position 12)" in error.message and error.message.endswith(" " * 12 + "^")

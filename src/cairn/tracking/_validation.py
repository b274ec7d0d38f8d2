"""Checks on what users log: key names, value sizes and types, batch limits (pure functions)."""

from __future__ import annotations

import math
import numbers
import re
from typing import TYPE_CHECKING, Any

from cairn.errors import InvalidParameterError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cairn.entities import Metric, Param, RunTag

__all__ = [
    "MAX_BATCH_METRICS",
    "MAX_BATCH_PARAMS",
    "MAX_BATCH_TAGS",
    "MAX_BATCH_TOTAL",
    "check_batch_limits",
    "check_experiment_name",
    "check_key",
    "check_step",
    "check_text",
    "check_timestamp",
    "metric_value",
    "param_value",
    "tag_value",
]

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 256
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_TOTAL = 1000

# Letters, digits, underscore, dash, period, space and slash, as users of the field expect.
_KEY_RE = re.compile(r"^[\w\-. /]+$")
_valid_keys: set[str] = set()  # keys seen valid; checked on every log_metric, so memoised


def check_key(key: Any, kind: str) -> str:
    """Return ``key`` if it is a legal metric/param/tag name, else raise naming it."""
    if key in _valid_keys:
        return key  # type: ignore[no-any-return]
    if not isinstance(key, str) or not key:
        raise InvalidParameterError(f"Invalid {kind} name {key!r}: expected a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidParameterError(
            f"Invalid {kind} name '{key[:40]}...': {len(key)} characters, the limit is "
            f"{MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        raise InvalidParameterError(
            f"Invalid {kind} name {key!r}: names may only contain letters, digits, underscores, "
            "dashes, periods, spaces and slashes"
        )
    parts = key.split("/")
    if key.startswith("/") or ".." in parts or "." in parts:
        raise InvalidParameterError(
            f"Invalid {kind} name {key!r}: names may not start with '/' or contain '.' or '..' "
            "path segments"
        )
    if len(_valid_keys) < 100_000:
        _valid_keys.add(key)
    return key


def metric_value(key: str, value: Any) -> float:
    """The metric value as a float; strings, None and other non-numbers are refused."""
    if type(value) is float:
        return value
    if type(value) is int or (
        isinstance(value, numbers.Real) and not isinstance(value, (str, bytes))
    ):
        return float(value)
    raise InvalidParameterError(
        f"Metric '{key}' must be a number, got {type(value).__name__} {value!r}"
    )


def check_step(key: str, step: Any) -> int:
    if type(step) is int:
        return step
    if isinstance(step, numbers.Integral):
        return int(step)
    raise InvalidParameterError(f"Step of metric '{key}' must be an integer, got {step!r}")


def check_timestamp(key: str, timestamp: Any) -> int:
    if type(timestamp) is int:
        return timestamp
    if isinstance(timestamp, (int, float, numbers.Integral)) and math.isfinite(timestamp):
        return int(timestamp)
    raise InvalidParameterError(
        f"Timestamp of metric '{key}' must be milliseconds since the epoch, got {timestamp!r}"
    )


def check_text(text: str, what: str) -> str:
    """Refuse NUL characters, which PostgreSQL text cannot hold and no name needs."""
    if "\x00" in text:
        raise InvalidParameterError(f"Invalid {what} {text[:40]!r}: it contains a NUL character")
    return text


def param_value(key: str, value: Any) -> str:
    text = check_text(value if isinstance(value, str) else str(value), f"value of param '{key}'")
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidParameterError(
            f"Value of param '{key}' is {len(text)} characters; the limit is "
            f"{MAX_PARAM_VALUE_LENGTH}"
        )
    return text


def tag_value(key: str, value: Any) -> str:
    text = check_text(value if isinstance(value, str) else str(value), f"value of tag '{key}'")
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidParameterError(
            f"Value of tag '{key}' is {len(text)} characters; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    return text


def check_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(
            f"Invalid experiment name {name!r}: expected a non-empty string"
        )
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterError(
            f"Experiment name is {len(name)} characters; the limit is {MAX_EXPERIMENT_NAME_LENGTH}"
        )
    return check_text(name, "experiment name")


def check_batch_limits(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> None:
    """Refuse a batch over the REST limits, so every store accepts what any store accepts."""
    for count, limit, what in (
        (len(metrics), MAX_BATCH_METRICS, "metrics"),
        (len(params), MAX_BATCH_PARAMS, "params"),
        (len(tags), MAX_BATCH_TAGS, "tags"),
        (len(metrics) + len(params) + len(tags), MAX_BATCH_TOTAL, "entries in total"),
    ):
        if count > limit:
            raise InvalidParameterError(
                f"A batch may hold at most {limit} {what}, got {count}; split it"
            )

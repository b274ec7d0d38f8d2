from __future__ import annotations

import math

import numpy as np
import pytest

from cairn.entities import Metric
from cairn.errors import InvalidParameterError
from cairn.tracking import _validation as v


@pytest.mark.parametrize("key", ["loss", "val/loss", "a-b.c_d e", "ünïcode", "x" * 250])
def test_valid_keys(key: str) -> None:
    assert v.check_key(key, "metric") == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "expected a non-empty string"),
        (None, "expected a non-empty string"),
        ("x" * 251, "limit is 250"),
        ("a*b", "may only contain"),
        ("a\nb", "may only contain"),
        ("/abs", "may not start with '/'"),
        ("a/../b", "'..' path segments"),
        ("./a", "'.' or '..'"),
    ],
)
def test_invalid_keys(key: object, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        v.check_key(key, "param")


@pytest.mark.parametrize("value", [1, 1.5, np.float32(2.5), np.int64(3), True, math.inf, math.nan])
def test_metric_values_accept_numbers(value: object) -> None:
    result = v.metric_value("m", value)
    assert isinstance(result, float)


@pytest.mark.parametrize("value", ["1.0", None, [1], b"1", object()])
def test_metric_values_refuse_non_numbers(value: object) -> None:
    with pytest.raises(InvalidParameterError, match="Metric 'm' must be a number"):
        v.metric_value("m", value)


def test_value_lengths() -> None:
    assert v.param_value("p", 0.5) == "0.5"
    with pytest.raises(InvalidParameterError, match="Value of param 'p' is 6001 characters"):
        v.param_value("p", "x" * 6001)
    with pytest.raises(InvalidParameterError, match="Value of tag 't' is 8001 characters"):
        v.tag_value("t", "x" * 8001)


def test_step_and_timestamp() -> None:
    assert v.check_step("m", np.int64(3)) == 3
    with pytest.raises(InvalidParameterError, match="Step of metric 'm' must be an integer"):
        v.check_step("m", 1.5)
    with pytest.raises(InvalidParameterError, match="Timestamp of metric 'm'"):
        v.check_timestamp("m", "now")


def test_batch_limits() -> None:
    metrics = [Metric("m", 1.0, 1, i) for i in range(1001)]
    with pytest.raises(InvalidParameterError, match="at most 1000 metrics, got 1001"):
        v.check_batch_limits(metrics, [], [])


def test_experiment_name() -> None:
    with pytest.raises(InvalidParameterError, match="Invalid experiment name ''"):
        v.check_experiment_name("")
    with pytest.raises(InvalidParameterError, match="limit is 256"):
        v.check_experiment_name("x" * 257)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: v.param_value("p", "a\x00b"), "value of param 'p'"),
        (lambda: v.tag_value("t", "a\x00b"), "value of tag 't'"),
        (lambda: v.check_experiment_name("a\x00b"), "experiment name"),
    ],
)
def test_nul_characters_are_refused(call: object, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"Invalid {message}.*NUL character"):
        call()  # type: ignore[operator]

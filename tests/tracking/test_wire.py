from __future__ import annotations

import math

import pytest

from cairn.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
)
from cairn.errors import InvalidParameterError
from cairn.tracking import _wire


def test_run_round_trips_through_mlflow_json() -> None:
    latest = {"loss": Metric("loss", 0.5, 10, 3), "nan": Metric("nan", math.nan, 11, 0)}
    run = Run(
        RunInfo("abc", "1", "name", "me", RunStatus.FINISHED, 1, 2, "mlflow-artifacts:/1/abc"),
        RunData({k: m.value for k, m in latest.items()}, {"p": "1"}, {"t": "v"}, latest),
        RunInputs((DatasetInput(Dataset("d", "x1", "delta", "/t", None, None), {"k": "v"}),)),
    )
    body = _wire.run_to_json(run)
    assert body["info"]["run_uuid"] == "abc"
    assert {"key": "nan", "value": "NaN", "timestamp": 11, "step": 0} in body["data"]["metrics"]
    back = _wire.run_from_json(body)
    assert back.info == run.info
    assert back.data.params == run.data.params and back.data.tags == run.data.tags
    assert back.data.latest_metrics["loss"] == latest["loss"]
    assert math.isnan(back.data.metrics["nan"])
    assert back.inputs == run.inputs


def test_experiment_round_trip() -> None:
    experiment = Experiment("3", "e", "mlflow-artifacts:/3", tags={"a": "b"}, creation_time=5)
    assert _wire.experiment_from_json(_wire.experiment_to_json(experiment)) == experiment


@pytest.mark.parametrize(
    ("raw", "expected"), [(1, 1.0), ("Infinity", math.inf), ("-Infinity", -math.inf), ("2.5", 2.5)]
)
def test_float_from_json(raw: object, expected: float) -> None:
    assert _wire.float_from_json(raw) == expected


@pytest.mark.parametrize("raw", ["abc", None, True, [1]])
def test_float_from_json_refuses_non_numbers(raw: object) -> None:
    with pytest.raises(InvalidParameterError, match="expected a number"):
        _wire.float_from_json(raw)

"""MLflow's REST JSON shapes for Cairn's entities, in both directions.

The server writes these shapes and the REST store reads them, so the two can never drift.
Non-finite floats travel as the strings "NaN", "Infinity" and "-Infinity", as protobuf's JSON
mapping spells them (JSON itself has no literal for them).
"""

from __future__ import annotations

import math
from typing import Any

from cairn.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
)
from cairn.errors import InvalidParameterError

__all__ = [
    "dataset_input_from_json",
    "dataset_input_to_json",
    "experiment_from_json",
    "experiment_to_json",
    "file_info_to_json",
    "float_from_json",
    "float_to_json",
    "metric_from_json",
    "metric_to_json",
    "run_from_json",
    "run_info_from_json",
    "run_info_to_json",
    "run_to_json",
    "tags_to_json",
]

_NON_FINITE_IN = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "nan": math.nan}


def float_to_json(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def float_from_json(value: Any, field: str = "value") -> float:
    if isinstance(value, bool):
        raise InvalidParameterError(
            f"Invalid value {value!r} for parameter '{field}': expected a number"
        )
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value in _NON_FINITE_IN:
            return _NON_FINITE_IN[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidParameterError(
        f"Invalid value {value!r} for parameter '{field}': expected a number"
    )


def tags_to_json(tags: dict[str, str] | Any) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _tags_from_json(items: Any) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or []}


def experiment_to_json(experiment: Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage.value,
        "tags": tags_to_json(experiment.tags),
    }
    if experiment.creation_time is not None:
        out["creation_time"] = experiment.creation_time
    if experiment.last_update_time is not None:
        out["last_update_time"] = experiment.last_update_time
    return out


def experiment_from_json(data: dict[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(data["experiment_id"]),
        name=data["name"],
        artifact_location=data.get("artifact_location", ""),
        lifecycle_stage=LifecycleStage(data.get("lifecycle_stage", "active")),
        tags=_tags_from_json(data.get("tags")),
        creation_time=_int_or_none(data.get("creation_time")),
        last_update_time=_int_or_none(data.get("last_update_time")),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def metric_to_json(metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": float_to_json(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def metric_from_json(data: dict[str, Any]) -> Metric:
    return Metric(
        data["key"],
        float_from_json(data.get("value")),
        int(data.get("timestamp", 0)),
        int(data.get("step", 0)),
    )


def run_info_to_json(info: RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status.value,
        "start_time": info.start_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage.value,
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def run_info_from_json(data: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=data.get("run_id") or data["run_uuid"],
        experiment_id=str(data["experiment_id"]),
        run_name=data.get("run_name", ""),
        user_id=data.get("user_id", ""),
        status=RunStatus(data.get("status", "RUNNING")),
        start_time=int(data.get("start_time", 0)),
        end_time=_int_or_none(data.get("end_time")),
        artifact_uri=data.get("artifact_uri", ""),
        lifecycle_stage=LifecycleStage(data.get("lifecycle_stage", "active")),
    )


def run_to_json(run: Run) -> dict[str, Any]:
    data = run.data
    metrics = [
        metric_to_json(data.latest_metrics.get(key) or Metric(key, value, 0, 0))
        for key, value in data.metrics.items()
    ]
    return {
        "info": run_info_to_json(run.info),
        "data": {
            "metrics": metrics,
            "params": tags_to_json(data.params),
            "tags": tags_to_json(data.tags),
        },
        "inputs": {"dataset_inputs": [dataset_input_to_json(d) for d in run.inputs.dataset_inputs]},
    }


def dataset_input_to_json(item: DatasetInput) -> dict[str, Any]:
    dataset = item.dataset
    body: dict[str, Any] = {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": dataset.source,
    }
    if dataset.schema is not None:
        body["schema"] = dataset.schema
    if dataset.profile is not None:
        body["profile"] = dataset.profile
    return {"tags": tags_to_json(item.tags), "dataset": body}


def dataset_input_from_json(data: dict[str, Any]) -> DatasetInput:
    body = data.get("dataset") or {}
    return DatasetInput(
        Dataset(
            name=body["name"],
            digest=body["digest"],
            source_type=body.get("source_type", ""),
            source=body.get("source", ""),
            schema=body.get("schema"),
            profile=body.get("profile"),
        ),
        _tags_from_json(data.get("tags")),
    )


def run_from_json(data: dict[str, Any]) -> Run:
    body = data.get("data") or {}
    latest = {m.key: m for m in map(metric_from_json, body.get("metrics") or [])}
    return Run(
        run_info_from_json(data["info"]),
        RunData(
            metrics={k: m.value for k, m in latest.items()},
            params=_tags_from_json(body.get("params")),
            tags=_tags_from_json(body.get("tags")),
            latest_metrics=latest,
        ),
        RunInputs(
            tuple(
                dataset_input_from_json(d)
                for d in (data.get("inputs") or {}).get("dataset_inputs") or []
            )
        ),
    )


def file_info_to_json(info: FileInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"path": info.path, "is_dir": info.is_dir}
    if info.file_size is not None:
        out["file_size"] = info.file_size
    return out

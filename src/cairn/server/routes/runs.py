"""``/api/2.0/mlflow/runs/*`` and ``metrics/get-history``, plus Cairn's idempotent run writes.

``/api/2.0/cairn/runs/create`` and ``/api/2.0/cairn/runs/log-batch`` take MLflow's bodies plus
a ``request_id``: a request applied once is never applied again, so a client may retry or
replay it safely. Every route accepts ``run_uuid`` wherever MLflow's take ``run_id``.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AliasChoices, Field

from cairn.entities import (
    Dataset,
    DatasetInput,
    LoggedModelMetric,
    LoggedModelOutput,
    Metric,
    Run,
    RunStatus,
    ViewType,
)
from cairn.errors import InvalidParameterError
from cairn.server.deps import Client, Store
from cairn.server.routes._common import API, JSONRoute, KeyValue, Request
from cairn.tracking._validation import check_batch_limits
from cairn.tracking._wire import float_from_json, metric_to_json, run_info_to_json, run_to_json
from cairn.tracking.client import TrackingClient, make_metric, make_param, make_tag
from cairn.tracking.stores.sql.store import SqlStore

__all__ = ["router"]

CAIRN_API = "/api/2.0/cairn"
RUN_NAME_TAG = "mlflow.runName"
LOGGED_MODELS_TAG = "mlflow.log-model.history"
MODEL_JSON_FIELDS = frozenset({"artifact_path", "flavors", "utc_time_created", "run_id"})
MAX_RESULTS = 50_000

RunId = Annotated[str, Field(min_length=1, validation_alias=AliasChoices("run_id", "run_uuid"))]
RequestId = Annotated[str, Field(min_length=1, max_length=64)]
Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]  # protobuf's int64: what the database holds


class RunRef(Request):
    run_id: RunId


class CreateRun(Request):
    experiment_id: str
    user_id: str = ""
    run_name: str = ""
    start_time: Int64 | None = None
    tags: list[KeyValue] = []


class UpdateRun(RunRef):
    status: RunStatus | None = None
    end_time: Int64 | None = None
    run_name: str = ""


class SearchRuns(Request):
    experiment_ids: list[str] = []
    filter: str | None = None
    run_view_type: ViewType = ViewType.ACTIVE_ONLY
    max_results: int = 1000
    order_by: list[str] = []
    page_token: str | None = None


class MetricBody(Request):
    key: str
    value: Any  # a number, or "NaN" / "Infinity" / "-Infinity"
    timestamp: Int64 | None = None
    step: Int64 | None = None
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogMetric(RunRef, MetricBody):
    pass


class LogParam(RunRef):
    key: str
    value: str = ""


class SetTag(RunRef):
    key: str
    value: str = ""


class DeleteTag(RunRef):
    key: str


class LogBatch(RunRef):
    metrics: list[MetricBody] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class IdempotentCreateRun(CreateRun):
    request_id: RequestId


class IdempotentLogBatch(LogBatch):
    request_id: RequestId


class DatasetBody(Request):
    name: Annotated[str, Field(min_length=1, max_length=500)]
    digest: Annotated[str, Field(min_length=1, max_length=64)]
    source_type: Annotated[str, Field(max_length=36)] = ""
    source: str = ""
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None


class InputTag(Request):
    key: Annotated[str, Field(min_length=1, max_length=255)]
    value: Annotated[str, Field(max_length=500)] = ""


class DatasetInputBody(Request):
    tags: list[InputTag] = []
    dataset: DatasetBody


class ModelRef(Request):
    model_id: Annotated[str, Field(min_length=1)]


class ModelOutputBody(ModelRef):
    step: Int64 = 0


class LogInputs(RunRef):
    datasets: list[DatasetInputBody] = []
    models: list[ModelRef] = []


class LogOutputs(RunRef):
    models: list[ModelOutputBody]


class LogModel(RunRef):
    model_json: str


def _now_ms() -> int:
    return int(time.time() * 1000)


def _run_id(run_id: str | None, run_uuid: str | None) -> str:
    resolved = run_id or run_uuid
    if not resolved:
        raise InvalidParameterError("Missing value for required parameter 'run_id'")
    return resolved


def _runs_json(store: SqlStore, runs: list[Run]) -> list[dict[str, Any]]:
    """MLflow's run JSON, with the logged models each run read and produced."""
    links = store.logged_models.run_models([run.info.run_id for run in runs])
    out = []
    for run in runs:
        body = run_to_json(run)
        models = links.get(run.info.run_id)
        if models is not None:
            body["inputs"]["model_inputs"] = [{"model_id": m} for m in models.inputs]
            body["outputs"] = {
                "model_outputs": [{"model_id": o.model_id, "step": o.step} for o in models.outputs]
            }
        out.append(body)
    return out


def _create_run(client: TrackingClient, body: CreateRun, request_id: str | None) -> Run:
    tags = {tag.key: tag.value for tag in body.tags}
    return client.create_run(
        body.experiment_id,
        body.start_time,
        tags,
        body.run_name or None,
        body.user_id or None,
        request_id=request_id,
    )


def _metric(body: MetricBody) -> Metric:
    return make_metric(body.key, float_from_json(body.value), body.timestamp, body.step)


def _log_batch(store: SqlStore, body: LogBatch, request_id: str | None = None) -> None:
    """Validate like ``TrackingClient.log_batch``, then write.

    Metrics naming a ``model_id`` are also recorded for that model, in the same transaction.
    MLflow clients re-send a run's metrics that way after ``log_model``; those already in the
    run's history (same step, time and value) are not appended to it again.
    """
    metrics = [_metric(m) for m in body.metrics]
    params = [make_param(p.key, p.value) for p in body.params]
    tags = [make_tag(tag.key, tag.value) for tag in body.tags]
    check_batch_limits(metrics, params, tags)
    linked = [(b.model_id, m, b) for m, b in zip(metrics, body.metrics, strict=True) if b.model_id]
    models = store.logged_models
    if linked:
        models.require(model_id for model_id, _, _ in linked)
        plain = [m for m, b in zip(metrics, body.metrics, strict=True) if not b.model_id]
        new = models.unlogged_run_metrics(body.run_id, [m for _, m, _ in linked])
        metrics = plain + new
    model_metrics = [
        (
            model_id,
            LoggedModelMetric(
                m.key,
                m.value,
                m.timestamp,
                m.step,
                body.run_id,
                b.dataset_name or None,
                b.dataset_digest or None,
            ),
        )
        for model_id, m, b in linked
    ]
    store.log_batch(
        body.run_id, metrics, params, tags, request_id=request_id, model_metrics=model_metrics
    )


runs = APIRouter(prefix=f"{API}/runs", tags=["runs"], route_class=JSONRoute)
metrics = APIRouter(prefix=f"{API}/metrics", tags=["runs"], route_class=JSONRoute)
cairn_runs = APIRouter(prefix=f"{CAIRN_API}/runs", tags=["cairn"], route_class=JSONRoute)


@runs.post("/create")
def create_run(body: CreateRun, client: Client, store: Store) -> dict[str, Any]:
    return {"run": _runs_json(store, [_create_run(client, body, None)])[0]}


@runs.get("/get")
def get_run(
    client: Client, store: Store, run_id: str | None = None, run_uuid: str | None = None
) -> dict[str, Any]:
    return {"run": _runs_json(store, [client.get_run(_run_id(run_id, run_uuid))])[0]}


@runs.post("/update")
def update_run(body: UpdateRun, store: Store) -> dict[str, Any]:
    end_time = body.end_time
    if end_time is None and body.status is not None and body.status.is_terminated:
        end_time = _now_ms()
    info = store.update_run_info(body.run_id, body.status, end_time, body.run_name or None)
    return {"run_info": run_info_to_json(info)}


@runs.post("/delete")
def delete_run(body: RunRef, client: Client) -> dict[str, Any]:
    client.delete_run(body.run_id)
    return {}


@runs.post("/restore")
def restore_run(body: RunRef, client: Client) -> dict[str, Any]:
    client.restore_run(body.run_id)
    return {}


@runs.post("/search")
def search_runs(body: SearchRuns, client: Client, store: Store) -> dict[str, Any]:
    if not 0 < body.max_results <= MAX_RESULTS:
        raise InvalidParameterError(
            f"Invalid value {body.max_results} for parameter 'max_results': expected 1 to "
            f"{MAX_RESULTS}"
        )
    found = client.search_runs(
        body.experiment_ids,
        body.filter,
        body.run_view_type,
        body.max_results,
        body.order_by,
        body.page_token,
    )
    out: dict[str, Any] = {"runs": _runs_json(store, found)}
    if found.token:
        out["next_page_token"] = found.token
    return out


@runs.post("/log-metric")
def log_metric(body: LogMetric, store: Store) -> dict[str, Any]:
    _log_batch(store, LogBatch(run_id=body.run_id, metrics=[body]))
    return {}


@runs.post("/log-parameter")
def log_param(body: LogParam, client: Client) -> dict[str, Any]:
    client.log_param(body.run_id, body.key, body.value)
    return {}


@runs.post("/set-tag")
def set_tag(body: SetTag, client: Client) -> dict[str, Any]:
    client.set_tag(body.run_id, body.key, body.value)
    return {}


@runs.post("/delete-tag")
def delete_tag(body: DeleteTag, client: Client) -> dict[str, Any]:
    client.delete_tag(body.run_id, body.key)
    return {}


@runs.post("/log-batch")
def log_batch(body: LogBatch, store: Store) -> dict[str, Any]:
    _log_batch(store, body)
    return {}


@runs.post("/log-inputs")
def log_inputs(body: LogInputs, store: Store) -> dict[str, Any]:
    datasets = [
        DatasetInput(
            Dataset(
                item.dataset.name,
                item.dataset.digest,
                item.dataset.source_type,
                item.dataset.source,
                item.dataset.schema_,
                item.dataset.profile,
            ),
            {tag.key: tag.value for tag in item.tags},
        )
        for item in body.datasets
    ]
    # One transaction: an unknown model or a failure fails the request before anything is
    # recorded; the run is checked even when nothing is.
    store.log_inputs(body.run_id, datasets, [m.model_id for m in body.models])
    return {}


@runs.post("/outputs")
def log_outputs(body: LogOutputs, store: Store) -> dict[str, Any]:
    """Record the logged models a run produced (MLflow 3 clients call this from log_model)."""
    outputs = [LoggedModelOutput(m.model_id, m.step) for m in body.models]
    store.logged_models.log_outputs(body.run_id, outputs)
    return {}


@runs.post("/log-model")
def log_model(body: LogModel, client: Client) -> dict[str, Any]:
    """Legacy model metadata: appended to the run's ``mlflow.log-model.history`` tag."""
    try:
        model = json.loads(body.model_json)
    except ValueError:
        raise InvalidParameterError(
            f"Invalid value for parameter 'model_json': not JSON: {body.model_json[:200]!r}"
        ) from None
    if not isinstance(model, dict):
        raise InvalidParameterError("Invalid value for parameter 'model_json': not an object")
    missing = sorted(MODEL_JSON_FIELDS - model.keys())
    if missing:
        raise InvalidParameterError(f"Model JSON is missing mandatory fields: {missing}")
    previous = client.get_run(body.run_id).data.tags.get(LOGGED_MODELS_TAG)
    try:
        history = json.loads(previous) if previous else []
    except ValueError:
        history = []
    history = [*history, model] if isinstance(history, list) else [model]
    client.set_tag(body.run_id, LOGGED_MODELS_TAG, json.dumps(history))
    return {}


@metrics.get("/get-history")
def get_metric_history(
    client: Client,
    metric_key: Annotated[str, Query()],
    run_id: str | None = None,
    run_uuid: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    if max_results is not None and not 0 < max_results <= MAX_RESULTS:
        raise InvalidParameterError(
            f"Invalid value {max_results} for parameter 'max_results': expected 1 to {MAX_RESULTS}"
        )
    found = client.get_metric_history(
        _run_id(run_id, run_uuid), metric_key, max_results, page_token
    )
    out: dict[str, Any] = {"metrics": [metric_to_json(m) for m in found]}
    if found.token:
        out["next_page_token"] = found.token
    return out


@cairn_runs.post("/create")
def create_run_once(body: IdempotentCreateRun, client: Client, store: Store) -> dict[str, Any]:
    """``runs/create`` applied at most once per ``request_id``: a repeat returns the same run."""
    return {"run": _runs_json(store, [_create_run(client, body, body.request_id)])[0]}


@cairn_runs.post("/log-batch")
def log_batch_once(body: IdempotentLogBatch, store: Store) -> dict[str, Any]:
    """``runs/log-batch`` applied at most once per ``request_id``: a repeat changes nothing."""
    _log_batch(store, body, body.request_id)
    return {}


router = APIRouter(route_class=JSONRoute)
for _part in (runs, metrics, cairn_runs):
    router.include_router(_part)

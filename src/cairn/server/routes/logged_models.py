"""``/api/2.0/mlflow/logged-models``: the MLflow 3 model records ``log_model`` writes.

``mlflow.<flavor>.log_model`` creates a model (PENDING), links it to the run
(``runs/outputs``), uploads its files under ``<experiment>/models/<model_id>/artifacts``
through the artifact proxy and finalizes it (PATCH, READY). Loading ``runs:/<run>/<name>``
finds it again with ``search`` (``name = '<name>'``) and ``get``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Request as HttpRequest
from pydantic import Field

from cairn.entities import LoggedModel, LoggedModelMetric, Metric
from cairn.errors import InvalidParameterError
from cairn.server.deps import Store
from cairn.server.routes._common import API, JSONRoute, KeyValue, Request
from cairn.server.routes.artifacts import list_children, repository_for
from cairn.tracking import _validation as v
from cairn.tracking._wire import file_info_to_json, metric_to_json, tags_to_json
from cairn.tracking.stores.sql.logged_models import DatasetRef, ModelOrderBy, parse_status

__all__ = ["router"]

MAX_NAME_LENGTH = 500
# A name is the last segment of runs:/<run_id>/<name> URIs, so it cannot hold separators.
_BAD_NAME_CHARACTERS = ("/", ":", ".", "%", '"', "'")

router = APIRouter(prefix=f"{API}/logged-models", tags=["logged-models"], route_class=JSONRoute)


class CreateLoggedModel(Request):
    experiment_id: str
    name: str | None = None
    model_type: Annotated[str, Field(max_length=500)] | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class FinalizeLoggedModel(Request):
    status: str | int


class SetLoggedModelTags(Request):
    tags: list[KeyValue] = []


class LogLoggedModelParams(Request):
    params: list[KeyValue] = []


class DatasetFilter(Request):
    dataset_name: str
    dataset_digest: str | None = None


class OrderBy(Request):
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


class SearchLoggedModels(Request):
    experiment_ids: Annotated[list[str], Field(min_length=1)]
    filter: str | None = None
    datasets: list[DatasetFilter] = []
    max_results: int | None = None
    order_by: list[OrderBy] = []
    page_token: str | None = None


def _name(name: str | None) -> str | None:
    if not name:
        return None  # the store picks a readable random name
    if len(name) > MAX_NAME_LENGTH or any(c in name for c in _BAD_NAME_CHARACTERS):
        raise InvalidParameterError(
            f"Invalid model name {name!r}: use at most {MAX_NAME_LENGTH} characters and none of "
            f"{' '.join(_BAD_NAME_CHARACTERS)}"
        )
    return name


def _tags(items: list[KeyValue]) -> dict[str, str]:
    return {v.check_key(tag.key, "tag"): v.tag_value(tag.key, tag.value) for tag in items}


def _params(items: list[KeyValue]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        value = v.param_value(item.key, item.value)
        if params.setdefault(v.check_key(item.key, "param"), value) != value:
            raise InvalidParameterError(
                f"Param '{item.key}' was given twice with different values "
                f"({params[item.key]!r} and {value!r})"
            )
    return params


def _metric_json(model_id: str, metric: LoggedModelMetric) -> dict[str, Any]:
    out = metric_to_json(Metric(metric.key, metric.value, metric.timestamp, metric.step))
    out["model_id"] = model_id
    for field in ("run_id", "dataset_name", "dataset_digest"):
        value = getattr(metric, field)
        if value:
            out[field] = value
    return out


def model_to_json(model: LoggedModel) -> dict[str, Any]:
    """MLflow's ``LoggedModel`` JSON: ``{info, data}``."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": model.artifact_location,
        "status": model.status.value,
        "tags": tags_to_json(model.tags),
    }
    for key, value in (
        ("model_type", model.model_type),
        ("source_run_id", model.source_run_id),
        ("status_message", model.status_message),
    ):
        if value:
            info[key] = value
    data = {
        "params": tags_to_json(model.params),
        "metrics": [_metric_json(model.model_id, m) for m in model.metrics],
    }
    return {"info": info, "data": data}


@router.post("")
def create_logged_model(body: CreateLoggedModel, store: Store) -> dict[str, Any]:
    model = store.logged_models.create(
        body.experiment_id,
        _name(body.name),
        source_run_id=body.source_run_id,
        model_type=body.model_type,
        tags=_tags(body.tags),
        params=_params(body.params),
    )
    return {"model": model_to_json(model)}


@router.post("/search")
def search_logged_models(body: SearchLoggedModels, store: Store) -> dict[str, Any]:
    found = store.logged_models.search(
        body.experiment_ids,
        body.filter,
        [DatasetRef(d.dataset_name, d.dataset_digest or None) for d in body.datasets],
        body.max_results,
        [
            ModelOrderBy(
                o.field_name,
                o.ascending,
                DatasetRef(o.dataset_name, o.dataset_digest or None) if o.dataset_name else None,
            )
            for o in body.order_by
        ],
        body.page_token,
    )
    out: dict[str, Any] = {"models": [model_to_json(m) for m in found]}
    if found.token:
        out["next_page_token"] = found.token
    return out


@router.get("/{model_id}")
def get_logged_model(model_id: str, store: Store, allow_deleted: bool = False) -> dict[str, Any]:
    return {"model": model_to_json(store.logged_models.get(model_id, allow_deleted))}


@router.patch("/{model_id}")
def finalize_logged_model(model_id: str, body: FinalizeLoggedModel, store: Store) -> dict[str, Any]:
    model = store.logged_models.finalize(model_id, parse_status(body.status))
    return {"model": model_to_json(model)}


@router.delete("/{model_id}")
def delete_logged_model(model_id: str, store: Store) -> dict[str, Any]:
    store.logged_models.delete(model_id)
    return {}


@router.post("/{model_id}/params")
def log_logged_model_params(
    model_id: str, body: LogLoggedModelParams, store: Store
) -> dict[str, Any]:
    store.logged_models.log_params(model_id, _params(body.params))
    return {}


@router.patch("/{model_id}/tags")
def set_logged_model_tags(model_id: str, body: SetLoggedModelTags, store: Store) -> dict[str, Any]:
    store.logged_models.set_tags(model_id, _tags(body.tags))
    return {}


@router.delete("/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(model_id: str, tag_key: str, store: Store) -> dict[str, Any]:
    store.logged_models.delete_tag(model_id, tag_key)
    return {}


@router.get("/{model_id}/artifacts/directories")
def list_logged_model_artifacts(
    model_id: str,
    request: HttpRequest,
    store: Store,
    artifact_directory_path: str | None = None,
) -> dict[str, Any]:
    """Direct children of a folder of the model's artifacts, relative to the model's root."""
    root_uri = store.logged_models.get(model_id).artifact_location
    files = list_children(repository_for(request, root_uri), artifact_directory_path)
    return {"root_uri": root_uri, "files": [file_info_to_json(info) for info in files]}

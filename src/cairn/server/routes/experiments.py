"""``/api/2.0/mlflow/experiments/*``: create, get, search, update, delete, restore, tags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Request as HttpRequest

from cairn.entities import ViewType
from cairn.errors import InvalidParameterError, NotFoundError
from cairn.server.deps import Client
from cairn.server.routes._common import API, JSONRoute, KeyValue, Request
from cairn.tracking._wire import experiment_to_json

router = APIRouter(prefix=f"{API}/experiments", tags=["experiments"], route_class=JSONRoute)


class CreateExperiment(Request):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = []


class ExperimentId(Request):
    experiment_id: str


class UpdateExperiment(Request):
    experiment_id: str
    new_name: str


class SetExperimentTag(Request):
    experiment_id: str
    key: str
    value: str


class SearchExperiments(Request):
    max_results: int = 1000
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = []
    view_type: ViewType = ViewType.ACTIVE_ONLY


def _name_filter(filter_string: str | None) -> str | None:
    """The subset of experiment filters clients send: ``name = 'x'`` / ``name LIKE 'x%'``."""
    if not filter_string:
        return None
    import re

    match = re.fullmatch(
        r"\s*(?:attribute\.|attributes\.)?name\s*(=|LIKE|ILIKE)\s*(['\"])(.*)\2\s*",
        filter_string,
        flags=re.IGNORECASE,
    )
    if match is None:
        raise InvalidParameterError(
            f"Unsupported experiment filter {filter_string!r}: use name = '...' or name LIKE '...'"
        )
    return match.group(3)


@router.post("/create")
def create_experiment(
    body: CreateExperiment, client: Client, request: HttpRequest
) -> dict[str, Any]:
    location = body.artifact_location or None
    if location and request.app.state.settings.restrict_client_uris:
        # Any client-chosen location could point into another experiment's artifacts.
        raise InvalidParameterError(
            "artifact_location cannot be set by clients of this server; it keeps artifacts "
            "under its own artifact root"
        )
    tags = {tag.key: tag.value for tag in body.tags}
    return {"experiment_id": client.create_experiment(body.name, location, tags)}


@router.get("/get")
def get_experiment(client: Client, experiment_id: Annotated[str, Query()]) -> dict[str, Any]:
    return {"experiment": experiment_to_json(client.get_experiment(experiment_id))}


@router.get("/get-by-name")
def get_experiment_by_name(
    client: Client, experiment_name: Annotated[str, Query()]
) -> dict[str, Any]:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise NotFoundError(f"Experiment '{experiment_name}' does not exist")
    return {"experiment": experiment_to_json(experiment)}


def _search(client: Client, body: SearchExperiments) -> dict[str, Any]:
    if not 0 < body.max_results <= 50_000:
        raise InvalidParameterError(
            f"Invalid value {body.max_results} for parameter 'max_results': expected 1 to 50000"
        )
    found = client.search_experiments(
        body.view_type, body.max_results, body.page_token, _name_filter(body.filter)
    )
    out: dict[str, Any] = {"experiments": [experiment_to_json(e) for e in found]}
    if found.token:
        out["next_page_token"] = found.token
    return out


@router.post("/search")
def search_experiments(body: SearchExperiments, client: Client) -> dict[str, Any]:
    return _search(client, body)


@router.get("/search", include_in_schema=False)
def search_experiments_get(
    client: Client,
    max_results: int = 1000,
    page_token: str | None = None,
    filter: str | None = None,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
) -> dict[str, Any]:
    body = SearchExperiments(
        max_results=max_results, page_token=page_token, filter=filter, view_type=view_type
    )
    return _search(client, body)


@router.post("/update")
def update_experiment(body: UpdateExperiment, client: Client) -> dict[str, Any]:
    client.rename_experiment(body.experiment_id, body.new_name)
    return {}


@router.post("/delete")
def delete_experiment(body: ExperimentId, client: Client) -> dict[str, Any]:
    client.delete_experiment(body.experiment_id)
    return {}


@router.post("/restore")
def restore_experiment(body: ExperimentId, client: Client) -> dict[str, Any]:
    client.restore_experiment(body.experiment_id)
    return {}


@router.post("/set-experiment-tag")
def set_experiment_tag(body: SetExperimentTag, client: Client) -> dict[str, Any]:
    client.set_experiment_tag(body.experiment_id, body.key, body.value)
    return {}

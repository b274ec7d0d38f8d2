"""``/api/2.0/mlflow/registered-models/*`` and ``model-versions/*``: MLflow's model registry.

Same paths, methods and JSON as MLflow's server: deletes carry a JSON body, reads take query
parameters, versions travel as strings. The legacy ``transition-stage`` is accepted for old
clients; aliases are the way to name a version now.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Request as HttpRequest

from cairn.models.registry._wire import model_version_to_json, registered_model_to_json
from cairn.models.registry.client import RegistryClient
from cairn.server._sources import client_source
from cairn.server.routes._common import API, JSONRoute, KeyValue, Request

__all__ = ["router"]

MODELS = f"{API}/registered-models"
VERSIONS = f"{API}/model-versions"
DEFAULT_MODEL_RESULTS = 100
DEFAULT_VERSION_RESULTS = 10_000

Version = str | int  # MLflow sends "3"; a bare number is accepted too


def _registry(request: HttpRequest) -> RegistryClient:
    registry: RegistryClient = request.app.state.registry
    return registry


Registry = Annotated[RegistryClient, Depends(_registry)]


class ModelName(Request):
    name: str


class CreateRegisteredModel(ModelName):
    tags: list[KeyValue] = []
    description: str | None = None


class RenameRegisteredModel(ModelName):
    new_name: str


class UpdateRegisteredModel(ModelName):
    description: str | None = None


class ModelTag(ModelName):
    key: str
    value: str = ""


class ModelTagKey(ModelName):
    key: str


class LatestVersions(ModelName):
    stages: list[str] = []


class SetAlias(ModelName):
    alias: str
    version: Version


class AliasName(ModelName):
    alias: str


class CreateModelVersion(ModelName):
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = []
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class VersionRef(ModelName):
    version: Version


class UpdateModelVersion(VersionRef):
    description: str | None = None


class TransitionStage(VersionRef):
    stage: str
    archive_existing_versions: bool = False


class VersionTag(VersionRef):
    key: str
    value: str = ""


class VersionTagKey(VersionRef):
    key: str


def _tags(tags: list[KeyValue]) -> dict[str, str]:
    return {tag.key: tag.value for tag in tags}


def _model(registry: RegistryClient, name: str) -> dict[str, Any]:
    return {"registered_model": registered_model_to_json(registry.get_registered_model(name))}


def _latest(registry: RegistryClient, name: str, stages: list[str]) -> dict[str, Any]:
    versions = registry.get_latest_versions(name, stages or None)
    return {"model_versions": [model_version_to_json(v) for v in versions]}


models = APIRouter(prefix=MODELS, tags=["model registry"], route_class=JSONRoute)
versions = APIRouter(prefix=VERSIONS, tags=["model registry"], route_class=JSONRoute)


# -- registered models ------------------------------------------------------------------------


@models.post("/create")
def create_registered_model(body: CreateRegisteredModel, registry: Registry) -> dict[str, Any]:
    model = registry.create_registered_model(body.name, _tags(body.tags), body.description)
    return {"registered_model": registered_model_to_json(model)}


@models.get("/get")
def get_registered_model(registry: Registry, name: Annotated[str, Query()]) -> dict[str, Any]:
    return _model(registry, name)


@models.post("/rename")
def rename_registered_model(body: RenameRegisteredModel, registry: Registry) -> dict[str, Any]:
    model = registry.rename_registered_model(body.name, body.new_name)
    return {"registered_model": registered_model_to_json(model)}


@models.patch("/update")
def update_registered_model(body: UpdateRegisteredModel, registry: Registry) -> dict[str, Any]:
    model = registry.update_registered_model(body.name, body.description)
    return {"registered_model": registered_model_to_json(model)}


@models.delete("/delete")
def delete_registered_model(body: ModelName, registry: Registry) -> dict[str, Any]:
    registry.delete_registered_model(body.name)
    return {}


@models.get("/search")
def search_registered_models(
    registry: Registry,
    filter: str | None = None,
    max_results: int = DEFAULT_MODEL_RESULTS,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    found = registry.search_registered_models(filter, max_results, order_by, page_token)
    out: dict[str, Any] = {"registered_models": [registered_model_to_json(m) for m in found]}
    if found.token:
        out["next_page_token"] = found.token
    return out


@models.post("/get-latest-versions")
def get_latest_versions(body: LatestVersions, registry: Registry) -> dict[str, Any]:
    return _latest(registry, body.name, body.stages)


@models.get("/get-latest-versions")
def get_latest_versions_get(
    registry: Registry,
    name: Annotated[str, Query()],
    stages: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    return _latest(registry, name, stages or [])


@models.post("/set-tag")
def set_registered_model_tag(body: ModelTag, registry: Registry) -> dict[str, Any]:
    registry.set_registered_model_tag(body.name, body.key, body.value)
    return {}


@models.delete("/delete-tag")
def delete_registered_model_tag(body: ModelTagKey, registry: Registry) -> dict[str, Any]:
    registry.delete_registered_model_tag(body.name, body.key)
    return {}


@models.post("/alias")
def set_registered_model_alias(body: SetAlias, registry: Registry) -> dict[str, Any]:
    registry.set_registered_model_alias(body.name, body.alias, body.version)
    return {}


@models.delete("/alias")
def delete_registered_model_alias(body: AliasName, registry: Registry) -> dict[str, Any]:
    registry.delete_registered_model_alias(body.name, body.alias)
    return {}


@models.get("/alias")
def get_model_version_by_alias(
    registry: Registry, name: Annotated[str, Query()], alias: Annotated[str, Query()]
) -> dict[str, Any]:
    version = registry.get_model_version_by_alias(name, alias)
    return {"model_version": model_version_to_json(version)}


# -- model versions ---------------------------------------------------------------------------


@versions.post("/create")
def create_model_version(
    body: CreateModelVersion, registry: Registry, request: HttpRequest
) -> dict[str, Any]:
    version = registry.create_model_version(
        body.name,
        client_source(request, body.source),
        run_id=body.run_id,
        tags=_tags(body.tags),
        description=body.description,
        run_link=body.run_link,
        model_id=body.model_id,
        user_id="",  # MLflow's request names no user, and the server's own is not the caller
    )
    return {"model_version": model_version_to_json(version)}


@versions.get("/get")
def get_model_version(
    registry: Registry, name: Annotated[str, Query()], version: Annotated[str, Query()]
) -> dict[str, Any]:
    return {"model_version": model_version_to_json(registry.get_model_version(name, version))}


@versions.patch("/update")
def update_model_version(body: UpdateModelVersion, registry: Registry) -> dict[str, Any]:
    version = registry.update_model_version(body.name, body.version, body.description)
    return {"model_version": model_version_to_json(version)}


@versions.post("/transition-stage")
def transition_model_version_stage(body: TransitionStage, registry: Registry) -> dict[str, Any]:
    version = registry.transition_model_version_stage(
        body.name, body.version, body.stage, body.archive_existing_versions
    )
    return {"model_version": model_version_to_json(version)}


@versions.delete("/delete")
def delete_model_version(body: VersionRef, registry: Registry) -> dict[str, Any]:
    registry.delete_model_version(body.name, body.version)
    return {}


@versions.get("/search")
def search_model_versions(
    registry: Registry,
    filter: str | None = None,
    max_results: int = DEFAULT_VERSION_RESULTS,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    found = registry.search_model_versions(filter, max_results, order_by, page_token)
    out: dict[str, Any] = {"model_versions": [model_version_to_json(v) for v in found]}
    if found.token:
        out["next_page_token"] = found.token
    return out


@versions.get("/get-download-uri")
def get_model_version_download_uri(
    registry: Registry, name: Annotated[str, Query()], version: Annotated[str, Query()]
) -> dict[str, Any]:
    return {"artifact_uri": registry.get_model_version_download_uri(name, version)}


@versions.post("/set-tag")
def set_model_version_tag(body: VersionTag, registry: Registry) -> dict[str, Any]:
    registry.set_model_version_tag(body.name, body.version, body.key, body.value)
    return {}


@versions.delete("/delete-tag")
def delete_model_version_tag(body: VersionTagKey, registry: Registry) -> dict[str, Any]:
    registry.delete_model_version_tag(body.name, body.version, body.key)
    return {}


router = APIRouter(route_class=JSONRoute)
for _part in (models, versions):
    router.include_router(_part)

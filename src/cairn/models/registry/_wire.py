"""MLflow's REST JSON shapes for registered models and versions, in both directions.

The server writes these shapes and the REST registry store reads them. As in MLflow's protobuf
JSON, versions travel as strings (``"3"``), aliases of a model as ``[{alias, version}]`` and
tags as ``[{key, value}]``; empty optional fields are left out.
"""

from __future__ import annotations

from typing import Any

from cairn.entities import ModelVersion, ModelVersionStage, ModelVersionStatus, RegisteredModel

__all__ = [
    "model_version_from_json",
    "model_version_to_json",
    "registered_model_from_json",
    "registered_model_to_json",
]


def _tags_to_json(tags: dict[str, str] | Any) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _tags_from_json(items: Any) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value", "")) for t in items or () if "key" in t}


def _drop_empty(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None and v != [] and v != ""}


def model_version_to_json(version: ModelVersion) -> dict[str, Any]:
    return _drop_empty(
        {
            "name": version.name,
            "version": str(version.version),
            "creation_timestamp": version.creation_timestamp,
            "last_updated_timestamp": version.last_updated_timestamp,
            "user_id": version.user_id,
            "current_stage": version.current_stage.value,
            "description": version.description,
            "source": version.source,
            "run_id": version.run_id,
            "status": version.status.value,
            "status_message": version.status_message,
            "tags": _tags_to_json(version.tags),
            "run_link": version.run_link,
            "aliases": list(version.aliases),
            "model_id": version.model_id,
        }
    )


def model_version_from_json(body: dict[str, Any]) -> ModelVersion:
    stage = body.get("current_stage") or ModelVersionStage.NONE.value
    return ModelVersion(
        name=str(body["name"]),
        version=int(body["version"]),
        creation_timestamp=int(body.get("creation_timestamp") or 0),
        last_updated_timestamp=int(body.get("last_updated_timestamp") or 0),
        source=str(body.get("source") or ""),
        run_id=body.get("run_id") or None,
        run_link=body.get("run_link") or None,
        description=body.get("description") or None,
        user_id=body.get("user_id") or None,
        status=ModelVersionStatus(body.get("status") or ModelVersionStatus.READY.value),
        status_message=body.get("status_message") or None,
        current_stage=ModelVersionStage(stage),
        tags=_tags_from_json(body.get("tags")),
        aliases=tuple(str(a) for a in body.get("aliases") or ()),
        model_id=body.get("model_id") or None,
    )


def registered_model_to_json(model: RegisteredModel) -> dict[str, Any]:
    return _drop_empty(
        {
            "name": model.name,
            "creation_timestamp": model.creation_timestamp,
            "last_updated_timestamp": model.last_updated_timestamp,
            "description": model.description,
            "latest_versions": [model_version_to_json(v) for v in model.latest_versions],
            "tags": _tags_to_json(model.tags),
            "aliases": [{"alias": a, "version": str(v)} for a, v in model.aliases.items()],
        }
    )


def registered_model_from_json(body: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=str(body["name"]),
        creation_timestamp=int(body.get("creation_timestamp") or 0),
        last_updated_timestamp=int(body.get("last_updated_timestamp") or 0),
        description=body.get("description") or None,
        latest_versions=tuple(
            model_version_from_json(v) for v in body.get("latest_versions") or ()
        ),
        tags=_tags_from_json(body.get("tags")),
        aliases={str(a["alias"]): int(a["version"]) for a in body.get("aliases") or ()},
    )

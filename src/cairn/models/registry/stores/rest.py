"""The registry store behind a tracking server, over MLflow's model-registry REST API 2.0.

It sends its requests through the tracking REST store's ``HttpSession`` (one pooled keep-alive
client per server, bounded retries, errors mapped to Cairn's). Creations are sent once, never
retried: a retry after a lost answer would register a second version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.entities import PagedList
from cairn.models.registry._wire import (
    model_version_from_json,
    registered_model_from_json,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cairn.entities import ModelVersion, ModelVersionStage, RegisteredModel
    from cairn.tracking.stores._http import HttpSession

__all__ = ["RestRegistryStore"]

MODELS = "/api/2.0/mlflow/registered-models"
VERSIONS = "/api/2.0/mlflow/model-versions"


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


class RestRegistryStore:
    """Registered models and versions on a Cairn or MLflow tracking server.

    Args:
        session: the tracking store's HTTP session to the server (not closed by this store).
    """

    def __init__(self, session: HttpSession) -> None:
        self.session = session

    def __repr__(self) -> str:
        return f"RestRegistryStore({self.session.base_url!r})"

    def close(self) -> None:
        """Nothing to release: the session belongs to the tracking store."""

    def _model(self, method: str, path: str, **kwargs: Any) -> RegisteredModel:
        data = self.session.call(method, path, **kwargs)
        return registered_model_from_json(data["registered_model"])

    def _version(self, method: str, path: str, **kwargs: Any) -> ModelVersion:
        data = self.session.call(method, path, **kwargs)
        return model_version_from_json(data["model_version"])

    # -- registered models --------------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: Mapping[str, str], description: str | None
    ) -> RegisteredModel:
        body: dict[str, Any] = {"name": name, "tags": _tags(tags)}
        if description is not None:
            body["description"] = description
        return self._model("POST", f"{MODELS}/create", body=body, retry=False)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._model("GET", f"{MODELS}/get", params={"name": name})

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        body = {"name": name, "new_name": new_name}
        return self._model("POST", f"{MODELS}/rename", body=body)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        body = {"name": name, "description": description or ""}
        return self._model("PATCH", f"{MODELS}/update", body=body)

    def delete_registered_model(self, name: str) -> None:
        self.session.call("DELETE", f"{MODELS}/delete", body={"name": name})

    def search_registered_models(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[RegisteredModel]:
        params = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": list(order_by or []) or None,
            "page_token": page_token,
        }
        data = self.session.call("GET", f"{MODELS}/search", params=params)
        models = [registered_model_from_json(m) for m in data.get("registered_models", [])]
        return PagedList(models, data.get("next_page_token") or None)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        body = {"name": name, "key": key, "value": value}
        self.session.call("POST", f"{MODELS}/set-tag", body=body)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.session.call("DELETE", f"{MODELS}/delete-tag", body={"name": name, "key": key})

    # -- model versions -----------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        tags: Mapping[str, str],
        run_link: str | None,
        description: str | None,
        user_id: str | None,
        model_id: str | None,
    ) -> ModelVersion:
        # user_id is not part of MLflow's request: the server records who asked.
        body: dict[str, Any] = {"name": name, "source": source, "tags": _tags(tags)}
        for field, value in (
            ("run_id", run_id),
            ("run_link", run_link),
            ("description", description),
            ("model_id", model_id),
        ):
            if value is not None:
                body[field] = value
        return self._version("POST", f"{VERSIONS}/create", body=body, retry=False)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        params = {"name": name, "version": str(version)}
        return self._version("GET", f"{VERSIONS}/get", params=params)

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        body = {"name": name, "version": str(version), "description": description or ""}
        return self._version("PATCH", f"{VERSIONS}/update", body=body)

    def transition_model_version_stage(
        self, name: str, version: int, stage: ModelVersionStage, archive_existing_versions: bool
    ) -> ModelVersion:
        body = {
            "name": name,
            "version": str(version),
            "stage": stage.value,
            "archive_existing_versions": archive_existing_versions,
        }
        return self._version("POST", f"{VERSIONS}/transition-stage", body=body)

    def delete_model_version(self, name: str, version: int) -> None:
        body = {"name": name, "version": str(version)}
        self.session.call("DELETE", f"{VERSIONS}/delete", body=body)

    def search_model_versions(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[ModelVersion]:
        params = {
            "filter": filter_string,
            "max_results": max_results,
            "order_by": list(order_by or []) or None,
            "page_token": page_token,
        }
        data = self.session.call("GET", f"{VERSIONS}/search", params=params)
        versions = [model_version_from_json(v) for v in data.get("model_versions", [])]
        return PagedList(versions, data.get("next_page_token") or None)

    def get_latest_versions(
        self, name: str, stages: Sequence[ModelVersionStage] | None
    ) -> list[ModelVersion]:
        body: dict[str, Any] = {"name": name}
        if stages:
            body["stages"] = [s.value for s in stages]
        data = self.session.call("POST", f"{MODELS}/get-latest-versions", body=body)
        versions = [model_version_from_json(v) for v in data.get("model_versions", [])]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def get_model_version_download_uri(self, name: str, version: int) -> str:
        params = {"name": name, "version": str(version)}
        data = self.session.call("GET", f"{VERSIONS}/get-download-uri", params=params)
        return str(data["artifact_uri"])

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        body = {"name": name, "version": str(version), "key": key, "value": value}
        self.session.call("POST", f"{VERSIONS}/set-tag", body=body)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        body = {"name": name, "version": str(version), "key": key}
        self.session.call("DELETE", f"{VERSIONS}/delete-tag", body=body)

    # -- aliases ------------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int) -> None:
        body = {"name": name, "alias": alias, "version": str(version)}
        self.session.call("POST", f"{MODELS}/alias", body=body)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.session.call("DELETE", f"{MODELS}/alias", body={"name": name, "alias": alias})

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._version("GET", f"{MODELS}/alias", params={"name": name, "alias": alias})

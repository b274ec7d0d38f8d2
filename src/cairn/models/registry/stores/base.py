"""The interface every registry store implements: SQL beside the tracking tables, or REST."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cairn.entities import ModelVersion, ModelVersionStage, PagedList, RegisteredModel

__all__ = ["RegistryStore"]


class RegistryStore(Protocol):
    """Registered models, versions, tags and aliases; the caller validates input.

    Unknown models, versions and aliases raise ``NotFoundError``; a taken name raises
    ``AlreadyExistsError``.
    """

    def close(self) -> None: ...

    def create_registered_model(
        self, name: str, tags: Mapping[str, str], description: str | None
    ) -> RegisteredModel: ...

    def get_registered_model(self, name: str) -> RegisteredModel: ...

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...

    def delete_registered_model(self, name: str) -> None: ...

    def search_registered_models(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[RegisteredModel]: ...

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

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
    ) -> ModelVersion: ...

    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion: ...

    def transition_model_version_stage(
        self, name: str, version: int, stage: ModelVersionStage, archive_existing_versions: bool
    ) -> ModelVersion: ...

    def delete_model_version(self, name: str, version: int) -> None: ...

    def search_model_versions(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[ModelVersion]: ...

    def get_latest_versions(
        self, name: str, stages: Sequence[ModelVersionStage] | None
    ) -> list[ModelVersion]: ...

    def get_model_version_download_uri(self, name: str, version: int) -> str: ...

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None: ...

    def set_registered_model_alias(self, name: str, alias: str, version: int) -> None: ...

    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

"""RegistryClient: registered models, versions, tags and aliases, validated, over one store."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cairn.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from cairn.models.registry import _validation as v
from cairn.tracking._validation import check_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cairn.entities import ModelVersion, ModelVersionStage, PagedList, RegisteredModel
    from cairn.models.registry.stores.base import RegistryStore

__all__ = ["RegistryClient"]

RUNS_SCHEME = "runs:/"


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(v.check_tag(key, value) for key, value in (tags or {}).items())


def _alias_name(alias: Any) -> str:
    if not isinstance(alias, str) or not alias:
        raise InvalidParameterError(f"Invalid alias {alias!r}: expected a non-empty string")
    return alias


def _stages(stages: Sequence[ModelVersionStage | str] | None) -> list[ModelVersionStage] | None:
    if stages is None:
        return None
    if isinstance(stages, str):
        stages = [stages]
    return [v.check_stage(stage) for stage in stages]


class RegistryClient:
    """The model registry of a tracking store: it lives in the same database, or server.

    Args:
        tracking_uri: a folder, ``sqlite:///PATH``, ``postgresql://...`` or ``http(s)://...``;
            defaults to the process's tracking URI (``cairn.set_tracking_uri`` /
            ``$CAIRN_TRACKING_URI`` / ``.cairn``).
        store: an already open registry store to use instead (the server passes its own).
    """

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str] | None = None,
        *,
        store: RegistryStore | None = None,
    ) -> None:
        from cairn._config import get_tracking_uri

        self.tracking_uri = os.fspath(tracking_uri) if tracking_uri else get_tracking_uri()
        if store is None:
            from cairn.models.registry.stores import get_registry_store

            store = get_registry_store(self.tracking_uri)
        self.store: RegistryStore = store

    # -- registered models --------------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model; a taken name raises ``AlreadyExistsError``."""
        return self.store.create_registered_model(
            v.check_model_name(name), _tags(tags), v.check_description(description)
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(v.check_model_name(name))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; its versions, tags and aliases follow it."""
        return self.store.rename_registered_model(
            v.check_model_name(name), v.check_model_name(new_name, "new model name")
        )

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return self.store.update_registered_model(
            v.check_model_name(name), v.check_description(description)
        )

    def delete_registered_model(self, name: str) -> None:
        """Delete a model with all its versions, tags and aliases."""
        self.store.delete_registered_model(v.check_model_name(name))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Models matching ``filter_string`` (``name LIKE 'churn%' AND tags.team = 'x'``),
        ordered by name unless ``order_by`` says otherwise; pass ``.token`` back for more."""
        return self.store.search_registered_models(filter_string, max_results, order_by, page_token)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        key, text = v.check_tag(key, value)
        self.store.set_registered_model_tag(v.check_model_name(name), key, text)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.store.delete_registered_model_tag(v.check_model_name(name), key)

    # -- model versions -----------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        *,
        run_link: str | None = None,
        model_id: str | None = None,
        user_id: str | None = None,
    ) -> ModelVersion:
        """Register the files at ``source`` as the next version of model ``name``.

        ``user_id`` defaults to the current OS user; an empty string records none.
        """
        from cairn.tracking._environment import current_user

        user = current_user() if user_id is None else check_text(user_id[:256], "user id")
        return self.store.create_model_version(
            v.check_model_name(name),
            v.check_source(source),
            run_id or None,
            _tags(tags),
            run_link or None,
            v.check_description(description),
            user or None,
            model_id or None,
        )

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(v.check_model_name(name), v.parse_version(version))

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        return self.store.update_model_version(
            v.check_model_name(name), v.parse_version(version), v.check_description(description)
        )

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: ModelVersionStage | str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """MLflow's legacy stages (None, Staging, Production, Archived); prefer aliases."""
        return self.store.transition_model_version_stage(
            v.check_model_name(name),
            v.parse_version(version),
            v.check_stage(stage),
            archive_existing_versions,
        )

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version, its tags and the aliases naming it; the number is not reused."""
        self.store.delete_model_version(v.check_model_name(name), v.parse_version(version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Versions matching ``filter_string`` (``name = 'churn' AND run_id = '...'``), most
        recently updated first unless ``order_by`` says otherwise."""
        return self.store.search_model_versions(filter_string, max_results, order_by, page_token)

    def get_latest_versions(
        self, name: str, stages: Sequence[ModelVersionStage | str] | None = None
    ) -> list[ModelVersion]:
        """The newest version of each stage (every stage by default), newest first: with no
        stages in use, a one-element list holding the model's newest version."""
        return self.store.get_latest_versions(v.check_model_name(name), _stages(stages))

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are: its source (a logged model's ``models:/<id>`` source
        resolved to that model's artifact location)."""
        return self.store.get_model_version_download_uri(
            v.check_model_name(name), v.parse_version(version)
        )

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        key, text = v.check_tag(key, value)
        self.store.set_model_version_tag(
            v.check_model_name(name), v.parse_version(version), key, text
        )

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.store.delete_model_version_tag(v.check_model_name(name), v.parse_version(version), key)

    # -- aliases ------------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` (such as ``champion``) at a version, moving it if it is in use."""
        self.store.set_registered_model_alias(
            v.check_model_name(name), v.check_alias(alias), v.parse_version(version)
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.store.delete_registered_model_alias(v.check_model_name(name), _alias_name(alias))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_model_version_by_alias(v.check_model_name(name), _alias_name(alias))

    # -- registering ----------------------------------------------------------------------------

    def register_model(
        self,
        model_uri: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """Create model ``name`` if it is missing, then a version of it from ``model_uri``.

        ``runs:/<run_id>/<path>`` registers ``<path>`` under the run's artifact URI and links
        the run; other URIs are kept as given, and local paths are made absolute.
        """
        v.check_model_name(name)
        source, run_id = self._source(model_uri)
        # A model that exists (perhaps created a moment ago by another process) gets a version.
        with contextlib.suppress(AlreadyExistsError):
            self.create_registered_model(name)
        return self.create_model_version(
            name, source, run_id=run_id, tags=tags, description=description
        )

    def _source(self, model_uri: str) -> tuple[str, str | None]:
        if not isinstance(model_uri, str) or not model_uri.strip():
            raise InvalidParameterError(
                f"Invalid model URI {model_uri!r}: expected runs:/<run_id>/<path>, a URI or a path"
            )
        if model_uri.startswith(RUNS_SCHEME):
            from cairn.tracking.client import TrackingClient

            run_id, _, path = model_uri[len(RUNS_SCHEME) :].lstrip("/").partition("/")
            if not run_id:
                raise InvalidParameterError(
                    f"Invalid model URI {model_uri!r}: expected runs:/<run_id>/<path>"
                )
            tracking = TrackingClient(self.tracking_uri)
            return tracking.get_artifact_uri(run_id, path.strip("/") or None), run_id
        scheme = urlsplit(model_uri).scheme
        if len(scheme) > 1:  # one letter is a Windows drive
            return model_uri, None
        local = Path(model_uri).expanduser().resolve()
        if not local.exists():
            raise NotFoundError(
                f"No model at {local}: pass the folder holding the model's files, or a URI"
            )
        return str(local), None

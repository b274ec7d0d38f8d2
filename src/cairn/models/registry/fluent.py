"""``cairn.register_model``: register a model version against the process's tracking URI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cairn.entities import ModelVersion

__all__ = ["register_model"]


def register_model(
    model_uri: str, name: str, tags: Mapping[str, Any] | None = None
) -> ModelVersion:
    """Register ``model_uri`` as the next version of model ``name``, creating it if missing.

    Args:
        model_uri: ``runs:/<run_id>/<path>`` (the run is linked to the version), any artifact
            URI (``s3://...``, ``models:/...``), or a local folder (stored as an absolute path).
        name: the registered model's name.
        tags: tags of the new version.
    """
    from cairn.models.registry.client import RegistryClient

    return RegistryClient().register_model(model_uri, name, tags)

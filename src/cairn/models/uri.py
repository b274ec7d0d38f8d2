"""Model URIs: where a model folder is, and how to get it onto this machine.

/abs/path, rel/path, file:///abs/path    a local folder, used in place
runs:/<run_id>/<artifact path>           a run's artifacts
models:/<name>/<version>                 a registered version (``latest`` for the newest)
models:/<name>@<alias>                   the version an alias points at
mlflow-artifacts:/..., s3://..., ...     any artifact URI the artifact layer reads
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from cairn.errors import InvalidParameterError, ModelFormatError, NotFoundError

__all__ = ["ModelURI", "download_model", "parse_model_uri"]

_RUNS = re.compile(r"^runs:/+(?P<run_id>[^/]+)/?(?P<path>.*)$")
_MODELS = re.compile(r"^models:/+(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))/?$")


@dataclass(frozen=True)
class ModelURI:
    """A parsed model URI; exactly one of the shapes in the module docstring."""

    kind: str  # "local" | "runs" | "models" | "artifact"
    uri: str
    run_id: str | None = None
    path: str = ""
    name: str | None = None
    version: str | None = None
    alias: str | None = None


def parse_model_uri(uri: str | os.PathLike[str]) -> ModelURI:
    text = os.fspath(uri)
    if not text:
        raise InvalidParameterError("the model URI is empty")
    if text.startswith("runs:"):
        match = _RUNS.match(text)
        if match is None:
            raise InvalidParameterError(f"bad model URI {text!r}: expected runs:/<run_id>/<path>")
        return ModelURI("runs", text, run_id=match["run_id"], path=match["path"].strip("/"))
    if text.startswith("models:"):
        match = _MODELS.match(text)
        if match is None:
            raise InvalidParameterError(
                f"bad model URI {text!r}: expected models:/<name>/<version> or "
                "models:/<name>@<alias>"
            )
        return ModelURI(
            "models", text, name=match["name"], version=match["version"], alias=match["alias"]
        )
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return ModelURI("local", text, path=unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        return ModelURI("artifact", text)
    return ModelURI("local", text, path=text)


def resolve_source(uri: ModelURI, tracking_uri: str | None = None) -> str:
    """The artifact location a ``models:/`` URI points at (other URIs unchanged)."""
    if uri.kind != "models":
        return uri.uri
    from cairn.models.registry import RegistryClient

    assert uri.name is not None
    client = RegistryClient(tracking_uri)
    if uri.alias is not None:
        version = str(client.get_model_version_by_alias(uri.name, uri.alias).version)
    elif uri.version == "latest":
        versions = client.get_latest_versions(uri.name)
        if not versions:
            raise NotFoundError(f"registered model {uri.name!r} has no versions")
        version = str(max(int(v.version) for v in versions))
    elif uri.version is not None and uri.version.isdigit():
        version = uri.version
    else:
        raise InvalidParameterError(
            f"bad model URI {uri.uri!r}: the version must be a number or 'latest'"
        )
    # The download URI, not the raw source: MLflow 3 registers logged models by a
    # ``models:/m-<id>`` source that only the registry can turn into a location.
    return client.get_model_version_download_uri(uri.name, version)


def download_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> Path:
    """A local folder holding the model: the folder itself for local URIs, else a download."""
    parsed = parse_model_uri(model_uri)
    if parsed.kind == "models":
        parsed = parse_model_uri(resolve_source(parsed, tracking_uri))
        if parsed.kind == "models":
            raise InvalidParameterError(f"{model_uri} points at another models:/ URI")
    if parsed.kind == "local":
        local = Path(parsed.path).expanduser()
        if not local.exists():
            raise NotFoundError(f"no model at {local} (from {os.fspath(model_uri)!r})")
        return local
    target = (
        os.fspath(dst_path) if dst_path is not None else tempfile.mkdtemp(prefix="cairn-model-")
    )
    if parsed.kind == "runs":
        from cairn.tracking.client import TrackingClient

        assert parsed.run_id is not None
        client = TrackingClient(tracking_uri)
        return Path(client.download_artifacts(parsed.run_id, parsed.path or None, target))
    from cairn.tracking.artifacts import get_artifact_repository

    try:
        return Path(get_artifact_repository(parsed.uri).download_artifacts(None, target))
    except FileNotFoundError as exc:
        raise NotFoundError(f"no model at {parsed.uri}") from exc


def model_folder(local: Path) -> Path:
    """``local`` itself, or its folder when it names the ``MLmodel`` file."""
    if local.is_file() and local.name == "MLmodel":
        return local.parent
    if not local.is_dir():
        raise ModelFormatError(f"{local} is not a model folder")
    return local

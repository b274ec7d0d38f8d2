"""Where Cairn keeps things: the tracking URI, its store location and environment switches."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "ENV_ARTIFACT_ROOT",
    "ENV_ASYNC_LOGGING",
    "ENV_CAPTURE_ENVIRONMENT",
    "ENV_TRACKING_URI",
    "StoreLocation",
    "async_logging_enabled",
    "env_flag",
    "get_tracking_uri",
    "resolve_store_location",
    "set_tracking_uri",
]

ENV_TRACKING_URI = "CAIRN_TRACKING_URI"
ENV_ASYNC_LOGGING = "CAIRN_ASYNC_LOGGING"
ENV_ARTIFACT_ROOT = "CAIRN_ARTIFACT_ROOT"
ENV_CAPTURE_ENVIRONMENT = "CAIRN_CAPTURE_ENVIRONMENT"
DEFAULT_HOME = ".cairn"
DB_FILENAME = "cairn.db"
ARTIFACTS_DIRNAME = "artifacts"

_tracking_uri: str | None = None


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Select the tracking store for this process; ``None`` goes back to the environment/default."""
    global _tracking_uri
    _tracking_uri = None if uri is None else os.fspath(uri)


def get_tracking_uri() -> str:
    """The explicit URI, else ``$CAIRN_TRACKING_URI``, else ``.cairn`` in the working directory."""
    if _tracking_uri:
        return _tracking_uri
    return os.environ.get(ENV_TRACKING_URI) or DEFAULT_HOME


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


def async_logging_enabled() -> bool:
    return env_flag(ENV_ASYNC_LOGGING, True)


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A tracking URI resolved to the store behind it."""

    kind: str  # "sql" or "rest"
    uri: str  # SQLAlchemy URL for "sql", base URL for "rest"
    artifact_root: str  # where new experiments put their artifacts


def _default_artifact_root(beside: Path | None) -> str:
    explicit = os.environ.get(ENV_ARTIFACT_ROOT)
    if explicit:
        return explicit
    base = beside if beside is not None else Path.cwd() / DEFAULT_HOME
    return str(base.resolve() / ARTIFACTS_DIRNAME)


def resolve_store_location(uri: str) -> StoreLocation:
    """Map a tracking URI (folder, ``sqlite:///``, ``postgresql://``, ``http://``) to a store."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        return StoreLocation("rest", uri.rstrip("/"), "")
    if scheme == "sqlite":
        db_path = uri.split(":///", 1)[1] if ":///" in uri else ""
        beside = Path(db_path).resolve().parent if db_path and db_path != ":memory:" else None
        return StoreLocation("sql", uri, _default_artifact_root(beside))
    if scheme.startswith("postgres"):
        rest = uri.split("://", 1)[1]
        return StoreLocation("sql", f"postgresql+psycopg://{rest}", _default_artifact_root(None))
    if scheme in ("mysql", "mysql+pymysql", "mssql") or "+" in scheme:
        return StoreLocation("sql", uri, _default_artifact_root(None))
    if scheme == "file":
        uri = urlsplit(uri).path
    elif scheme and len(scheme) > 1:  # one letter is a Windows drive
        from cairn.errors import InvalidParameterError

        raise InvalidParameterError(
            f"Unsupported tracking URI {uri!r}: use a folder path, sqlite:///PATH, "
            "postgresql://USER@HOST/DB or http://HOST:PORT"
        )
    home = Path(uri).expanduser().resolve()
    return StoreLocation(
        "sql",
        f"sqlite:///{home / DB_FILENAME}",
        os.environ.get(ENV_ARTIFACT_ROOT) or str(home / ARTIFACTS_DIRNAME),
    )

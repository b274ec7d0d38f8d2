"""Artifacts behind a tracking server's artifact proxy, as MLflow clients reach them.

Two spellings name the same place: ``mlflow-artifacts:/<path>`` (resolved against the current
tracking URI's server, or ``mlflow-artifacts://host:port/<path>``) and
``http(s)://host[:port][/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>``. Uploads and
downloads stream; listings give paths relative to the run's artifact root.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from cairn.entities import FileInfo
from cairn.errors import InvalidParameterError, NotFoundError
from cairn.tracking._paths import normalize_artifact_path
from cairn.tracking.artifacts import ArtifactRepository, _local_path

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cairn.tracking.stores._http import HttpSession

__all__ = ["PROXY_PATH", "HttpArtifactRepository", "is_proxy_uri", "resolve_proxy_uri"]

PROXY_SCHEME = "mlflow-artifacts"
PROXY_PATH = "/api/2.0/mlflow-artifacts/artifacts"
_MAX_WORKERS = 8

T = TypeVar("T")


def is_proxy_uri(uri: str) -> bool:
    """Whether ``uri`` names a tracking server's artifact proxy."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == PROXY_SCHEME:
        return True
    return scheme in ("http", "https") and PROXY_PATH in parts.path


def resolve_proxy_uri(uri: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """``(server base URL, path under the proxy root)`` for a proxy artifact URI.

    ``mlflow-artifacts:/x`` is resolved against ``tracking_uri`` (default: the current tracking
    URI), which must then name a server, as MLflow does.
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() == PROXY_SCHEME:
        from cairn._config import get_tracking_uri

        tracking = (tracking_uri or get_tracking_uri()).rstrip("/")
        tracking_scheme = urlsplit(tracking).scheme.lower()
        if parts.netloc:
            scheme = tracking_scheme if tracking_scheme in ("http", "https") else "http"
            base = f"{scheme}://{parts.netloc}"
        elif tracking_scheme in ("http", "https"):
            base = tracking
        else:
            raise InvalidParameterError(
                f"Artifact URI {uri!r} is kept by a tracking server's artifact proxy, but the "
                f"tracking URI {tracking!r} is not a server: set it to the server "
                "(cairn.set_tracking_uri('http://HOST:PORT') or $CAIRN_TRACKING_URI)"
            )
        root = parts.path
    else:
        index = parts.path.index(PROXY_PATH)
        base = urlunsplit((parts.scheme, parts.netloc, parts.path[:index], "", "")).rstrip("/")
        root = unquote(parts.path[index + len(PROXY_PATH) :])
    return base, normalize_artifact_path(root.strip("/"))


def _shared_session(base_url: str) -> HttpSession:
    """The pooled session of the process's store for that server (one connection pool)."""
    from cairn.tracking.stores import get_store
    from cairn.tracking.stores.rest import RestStore

    store = get_store(base_url)
    if not isinstance(store, RestStore):  # pragma: no cover - get_store maps http(s) to REST
        raise InvalidParameterError(f"{base_url!r} is not a tracking server URL")
    return store.session


def _each(items: Sequence[T], action: Callable[[T], None]) -> None:
    """Run ``action`` on every item, a few at a time over the pooled connections."""
    if len(items) <= 1:
        for item in items:
            action(item)
        return
    with ThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(items))) as pool:
        for future in [pool.submit(action, item) for item in items]:
            future.result()


class _HttpStorage:
    """The artifact proxy as ``ArtifactRepository``'s storage: normalized relative paths."""

    def __init__(self, session: HttpSession, root: str) -> None:
        self.session = session
        self.root = root

    def _full(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel and self.root else rel or self.root

    def _url(self, rel: str) -> str:
        return f"{PROXY_PATH}/{quote(self._full(rel), safe='/')}"

    def put_files(self, dirs: list[str], files: list[tuple[str, str]]) -> None:
        # Folders exist implicitly through their files; the proxy keeps no empty folders.
        _each(files, lambda item: self.session.upload(self._url(item[1]), Path(item[0])))

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.session.upload(self._url(rel), data)

    def read_bytes(self, rel: str) -> bytes:
        return self.session.read(self._url(rel))

    def listdir(self, rel: str) -> list[FileInfo]:
        data = self.session.call("GET", PROXY_PATH, params={"path": self._full(rel)})
        infos: list[FileInfo] = []
        for entry in data.get("files") or []:
            name = str(entry.get("path") or "").strip("/")
            if not name:
                continue
            # Server-provided names become local paths on download: they must stay inside.
            child = normalize_artifact_path(posixpath.join(rel, name) if rel else name)
            if posixpath.dirname(child) != rel:
                continue
            is_dir = bool(entry.get("is_dir"))
            size = entry.get("file_size")
            infos.append(FileInfo(child, is_dir, None if is_dir or size is None else int(size)))
        return infos

    def download(self, rel: str, dst: str) -> None:
        entries = self.listdir(rel)
        if not entries:
            if not rel:
                return  # an empty root downloads as an empty folder
            self._download_file(rel, dst)
            return
        os.makedirs(_local_path(dst, rel), exist_ok=True)
        files: list[str] = []
        pending = entries
        while pending:
            info = pending.pop()
            if info.is_dir:
                os.makedirs(_local_path(dst, info.path), exist_ok=True)
                pending.extend(self.listdir(info.path))
            else:
                files.append(info.path)
        _each(files, lambda path: self._download_file(path, dst))

    def _download_file(self, rel: str, dst: str) -> None:
        target = Path(_local_path(dst, rel))
        target.parent.mkdir(parents=True, exist_ok=True)
        self.session.download(self._url(rel), target)

    def delete(self, rel: str) -> None:
        with contextlib.suppress(NotFoundError):  # missing is a no-op, as for local roots
            self.session.call("DELETE", self._url(rel))

    def exists(self, rel: str) -> bool:
        if self.listdir(rel):
            return True
        return bool(rel) and self.session.probe(self._url(rel))


class HttpArtifactRepository(ArtifactRepository):
    """A run's artifacts through a tracking server's proxy; the same methods as the local one.

    Args:
        root_uri: ``mlflow-artifacts:/<path>`` or ``http(s)://.../mlflow-artifacts/artifacts/<path>``.
        base_url: the server to resolve ``mlflow-artifacts:/`` against (default: tracking URI).
        session: the HTTP session to use (default: the process's store for that server).
    """

    def __init__(
        self,
        root_uri: str,
        *,
        base_url: str | None = None,
        session: HttpSession | None = None,
    ) -> None:
        base, root = resolve_proxy_uri(root_uri, base_url)
        self._root_uri = root_uri
        self._storage = _HttpStorage(session or _shared_session(base), root)

    def __repr__(self) -> str:
        return f"HttpArtifactRepository({self._root_uri!r})"

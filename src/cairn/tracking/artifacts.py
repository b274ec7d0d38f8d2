"""The artifact store: files of a run under a root URI (local folder or any fsspec URL).

Local roots use ``os``/``shutil`` directly: it is faster than fsspec for the many small files
runs log, and it lets every resolved path be checked against symlinks pointing out of the root.
Other URLs (``memory://``, ``s3://`` ...) go through fsspec, imported on first use.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from cairn.entities import FileInfo
from cairn.errors import (
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    UnsafePathError,
)
from cairn.tracking._paths import ensure_within, normalize_artifact_path

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import BinaryIO, TextIO

__all__ = [
    "ArtifactRepository",
    "SupportsSavefig",
    "SupportsWriteHtml",
    "figure_to_bytes",
    "get_artifact_repository",
    "serialize_dict",
]

_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_FIGURE_FORMATS = {"png": "png", "svg": "svg", "pdf": "pdf", "jpg": "jpg", "jpeg": "jpg"}


@contextlib.contextmanager
def _os_errors(action: str, path: str) -> Iterator[None]:
    """Translate the OS/fsspec errors of one operation into Cairn's, naming the artifact."""
    try:
        yield
    except FileNotFoundError as exc:
        raise NotFoundError(f"Cannot {action} {path!r}: {exc}") from exc
    except PermissionError as exc:
        raise PermissionDeniedError(f"Cannot {action} {path!r}: {exc}") from exc
    except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        raise InvalidParameterError(f"Cannot {action} {path!r}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"Cannot {action} {path!r}: {exc}") from exc


def _local_path(dst: str, rel: str) -> str:
    return os.path.join(dst, *rel.split("/")) if rel else dst


def _walk_local_source(local_dir: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Relative dirs and (file, relative path) pairs under a user's folder, following links once."""
    dirs: list[str] = []
    files: list[tuple[str, str]] = []
    seen = {os.path.realpath(local_dir)}
    stack = [(local_dir, "")]
    while stack:
        current, rel_dir = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                rel = normalize_artifact_path(f"{rel_dir}/{entry.name}" if rel_dir else entry.name)
                if entry.is_dir():
                    real = os.path.realpath(entry.path)
                    if real not in seen:  # a link back up would otherwise loop forever
                        seen.add(real)
                        dirs.append(rel)
                        stack.append((entry.path, rel))
                elif entry.is_file():
                    files.append((entry.path, rel))
    return dirs, files


class _Storage(Protocol):
    """What a backend does with already-normalized relative paths ('' is the root)."""

    def put_files(self, dirs: list[str], files: list[tuple[str, str]]) -> None: ...
    def write_bytes(self, rel: str, data: bytes) -> None: ...
    def read_bytes(self, rel: str) -> bytes: ...
    def listdir(self, rel: str) -> list[FileInfo]: ...
    def download(self, rel: str, dst: str) -> None: ...
    def delete(self, rel: str) -> None: ...
    def exists(self, rel: str) -> bool: ...


class _LocalStorage:
    """Plain ``os``/``shutil`` over a local folder; every target is resolved inside the root."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _resolve(self, rel: str) -> str:
        return ensure_within(self.root, _local_path(self.root, rel))

    def put_files(self, dirs: list[str], files: list[tuple[str, str]]) -> None:
        made: set[str] = set()
        for rel in dirs:
            os.makedirs(self._resolve(rel), exist_ok=True)
        for src, rel in files:
            dst = self._resolve(rel)
            parent = os.path.dirname(dst)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            shutil.copyfile(src, dst)  # not copy(): new files get the process umask

    def write_bytes(self, rel: str, data: bytes) -> None:
        dst = self._resolve(rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)

    def read_bytes(self, rel: str) -> bytes:
        with open(self._resolve(rel), "rb") as f:
            return f.read()

    def _children(self, real_root: str, real_dir: str, rel_dir: str) -> list[tuple[str, FileInfo]]:
        """Entries of a resolved folder; links out of the root and unsafe names are left out."""
        children: list[tuple[str, FileInfo]] = []
        with os.scandir(real_dir) as entries:
            for entry in entries:
                try:
                    rel = normalize_artifact_path(
                        f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                    )
                    real = (
                        ensure_within(real_root, entry.path) if entry.is_symlink() else entry.path
                    )
                    is_dir = entry.is_dir()
                    size = None if is_dir else entry.stat().st_size
                except (UnsafePathError, FileNotFoundError):  # FileNotFound: a dangling link
                    continue
                children.append((real, FileInfo(rel, is_dir, size)))
        return children

    def listdir(self, rel: str) -> list[FileInfo]:
        real_dir = self._resolve(rel)
        if not os.path.isdir(real_dir):
            return []
        real_root = os.path.realpath(self.root)
        return [info for _, info in self._children(real_root, real_dir, rel)]

    def download(self, rel: str, dst: str) -> None:
        src = self._resolve(rel)
        if os.path.isfile(src):
            target = _local_path(dst, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(src, target)
            return
        if not os.path.isdir(src):
            if rel:
                raise FileNotFoundError(f"no such artifact under {self.root!r}")
            return  # an empty root downloads as an empty folder
        real_root = os.path.realpath(self.root)
        os.makedirs(_local_path(dst, rel), exist_ok=True)
        seen = {src}
        stack = [(src, rel)]
        while stack:
            real_dir, rel_dir = stack.pop()
            for real, info in self._children(real_root, real_dir, rel_dir):
                target = _local_path(dst, info.path)
                if not info.is_dir:
                    shutil.copyfile(real, target)
                elif real not in seen:  # a link to an ancestor would otherwise loop forever
                    seen.add(real)
                    os.makedirs(target, exist_ok=True)
                    stack.append((real, info.path))

    def delete(self, rel: str) -> None:
        if not rel:
            target = os.path.realpath(self.root)
        else:
            # Resolve only the parent: deleting a link removes the link, never what it points to.
            parent, name = posixpath.split(rel)
            target = os.path.join(self._resolve(parent), name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)

    def exists(self, rel: str) -> bool:
        return os.path.exists(self._resolve(rel))


class _FsspecStorage:
    """Any fsspec filesystem; remote names are untrusted, so unsafe ones are skipped on reads."""

    def __init__(self, fs: Any, base: str) -> None:
        self.fs = fs
        self.base = base.rstrip("/")

    def _full(self, rel: str) -> str:
        if not rel:
            return self.base
        return f"{self.base}/{rel}" if self.base else rel

    def _relative(self, name: str) -> str | None:
        """The safe root-relative path of a name fsspec returned, or None."""
        name = name.rstrip("/")
        if self.base:
            if not name.startswith(self.base + "/"):
                return None
            name = name[len(self.base) + 1 :]
        try:
            return normalize_artifact_path(name.lstrip("/") if not self.base else name) or None
        except UnsafePathError:
            return None

    def put_files(self, dirs: list[str], files: list[tuple[str, str]]) -> None:
        if files:
            # One batched call: async filesystems (s3, gcs) then upload concurrently.
            self.fs.put([src for src, _ in files], [self._full(rel) for _, rel in files])

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self._full(rel), data)

    def read_bytes(self, rel: str) -> bytes:
        full = self._full(rel)
        try:
            data: bytes = self.fs.cat_file(full)
        except FileNotFoundError:
            if self.fs.isdir(full):
                raise IsADirectoryError(f"{full!r} is a directory") from None
            raise
        return data

    def listdir(self, rel: str) -> list[FileInfo]:
        try:
            entries = self.fs.ls(self._full(rel), detail=True)
        except FileNotFoundError:
            return []
        infos: list[FileInfo] = []
        for entry in entries:
            child = self._relative(entry["name"])
            if child is None or posixpath.dirname(child) != rel:  # a file lists itself
                continue
            is_dir = entry["type"] == "directory"
            infos.append(FileInfo(child, is_dir, None if is_dir else int(entry.get("size") or 0)))
        return infos

    def download(self, rel: str, dst: str) -> None:
        full = self._full(rel)
        try:
            info = self.fs.info(full)
        except FileNotFoundError:
            if rel:
                raise FileNotFoundError(f"no such artifact under {self.base!r}") from None
            return  # an empty root downloads as an empty folder
        if info["type"] != "directory":
            target = _local_path(dst, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self.fs.get_file(full, target)
            return
        os.makedirs(_local_path(dst, rel), exist_ok=True)
        remote: list[str] = []
        local: list[str] = []
        for name, entry in self.fs.find(full, withdirs=True, detail=True).items():
            child = self._relative(name)
            if child is None or (rel and not child.startswith(rel + "/")):
                continue
            target = _local_path(dst, child)
            if entry["type"] == "directory":
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                remote.append(name)
                local.append(target)
        if remote:
            self.fs.get(remote, local)

    def delete(self, rel: str) -> None:
        full = self._full(rel)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(full, recursive=True)

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._full(rel)))


def _local_root(uri: str) -> str | None:
    """The local folder a root URI names, or None when fsspec must handle it."""
    if not _URI_SCHEME.match(uri) or re.match(r"[A-Za-z]:[\\/]", uri):
        return os.path.abspath(uri)
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise InvalidParameterError(
            f"Unsupported artifact root {uri!r}: file URIs must be local (file:///abs/path)"
        )
    path = unquote(parts.path)
    if re.match(r"/[A-Za-z]:", path):  # file:///C:/x on Windows
        path = path[1:]
    return os.path.abspath(path)


def _make_storage(uri: str) -> _Storage:
    local = _local_root(uri)
    if local is not None:
        return _LocalStorage(local)
    from fsspec.core import url_to_fs
    from fsspec.implementations.local import LocalFileSystem

    fs, base = url_to_fs(uri)
    if isinstance(fs, LocalFileSystem):  # e.g. local:// — same checks as a plain folder
        return _LocalStorage(os.path.abspath(base))
    return _FsspecStorage(fs, base)


class ArtifactRepository:
    """The artifacts under one root URI; every path argument is relative to that root."""

    def __init__(self, root_uri: str) -> None:
        self._root_uri = root_uri
        self._storage = _make_storage(root_uri)

    def __repr__(self) -> str:
        return f"ArtifactRepository({self._root_uri!r})"

    @property
    def root_uri(self) -> str:
        return self._root_uri

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy one local file to ``<root>/<artifact_path>/<basename>``.

        Args:
            local_path: the file to copy.
            artifact_path: the folder under the root to copy it into; None for the root.
        """
        src = os.fspath(local_path)
        folder = normalize_artifact_path(artifact_path)
        name = os.path.basename(src)
        rel = normalize_artifact_path(f"{folder}/{name}" if folder else name)
        with _os_errors("log artifact", src):
            if not os.path.isfile(src):
                if os.path.isdir(src):
                    raise InvalidParameterError(
                        f"Cannot log artifact {src!r}: it is a folder; use log_artifacts()"
                    )
                raise FileNotFoundError(f"no such file: {src!r}")
            self._storage.put_files([], [(src, rel)])

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy the contents of a local folder, recursively, under ``<root>/<artifact_path>``.

        Args:
            local_dir: the folder whose contents to copy.
            artifact_path: the folder under the root to copy them into; None for the root.
        """
        src = os.fspath(local_dir)
        folder = normalize_artifact_path(artifact_path)
        with _os_errors("log artifacts from", src):
            if not os.path.isdir(src):
                if os.path.exists(src):
                    raise InvalidParameterError(
                        f"Cannot log artifacts from {src!r}: not a folder; use log_artifact()"
                    )
                raise FileNotFoundError(f"no such folder: {src!r}")
            dirs, files = _walk_local_source(src)
            if folder:
                dirs = [folder] + [f"{folder}/{d}" for d in dirs]
                files = [(path, f"{folder}/{rel}") for path, rel in files]
            self._storage.put_files(dirs, files)

    def write_bytes(self, artifact_file: str, data: bytes) -> None:
        """Write ``data`` to the artifact file, creating folders as needed."""
        rel = self._file_path(artifact_file)
        with _os_errors("write artifact", rel):
            self._storage.write_bytes(rel, data)

    def write_text(self, artifact_file: str, text: str) -> None:
        """Write ``text`` as UTF-8 to the artifact file."""
        self.write_bytes(artifact_file, text.encode("utf-8"))

    def read_bytes(self, artifact_file: str) -> bytes:
        """The content of one artifact file."""
        rel = self._file_path(artifact_file)
        with _os_errors("read artifact", rel):
            return self._storage.read_bytes(rel)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path`` sorted by path; [] when it is missing or a file."""
        rel = normalize_artifact_path(path)
        with _os_errors("list artifacts in", rel):
            return sorted(self._storage.listdir(rel), key=lambda info: info.path)

    def download_artifacts(
        self, artifact_path: str | None, dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Download a file or folder tree to ``dst_path`` and return its local path.

        The artifact keeps its relative path under ``dst_path`` (``a/b.txt`` lands at
        ``<dst>/a/b.txt``); the root downloads as ``dst_path`` itself.

        Args:
            artifact_path: the file or folder to download; None or '' for everything.
            dst_path: the local folder to download into; None for a new private temp folder.

        Raises:
            NotFoundError: nothing exists at ``artifact_path``.
        """
        rel = normalize_artifact_path(artifact_path)
        with _os_errors("download artifact", rel):
            if dst_path is None:
                dst = tempfile.mkdtemp(prefix="cairn-artifacts-")  # mode 0o700
            else:
                dst = os.path.abspath(os.fspath(dst_path))
                os.makedirs(dst, exist_ok=True)
            self._storage.download(rel, dst)
        return _local_path(dst, rel)

    def delete_artifacts(self, path: str | None = None) -> None:
        """Delete a file or folder tree (everything when ``path`` is None); missing is a no-op."""
        rel = normalize_artifact_path(path)
        with _os_errors("delete artifact", rel):
            self._storage.delete(rel)

    def exists(self, path: str | None) -> bool:
        """Whether a file or folder exists at ``path``."""
        rel = normalize_artifact_path(path)
        with _os_errors("check artifact", rel):
            return self._storage.exists(rel)

    @staticmethod
    def _file_path(artifact_file: str) -> str:
        rel = normalize_artifact_path(artifact_file)
        if not rel:
            raise InvalidParameterError(
                f"Invalid artifact file {artifact_file!r}: name a file under the root"
            )
        return rel


def get_artifact_repository(uri: str, tracking_uri: str | None = None) -> ArtifactRepository:
    """The artifact repository rooted at ``uri``: a local folder, ``file://``, an fsspec URL, or
    a tracking server's artifact proxy (``mlflow-artifacts:/...``, ``http(s)://...``), the
    latter resolved against ``tracking_uri`` (default: the process's tracking URI)."""
    if uri.lower().startswith(("mlflow-artifacts:", "http://", "https://")):
        from cairn.tracking._http_artifacts import HttpArtifactRepository, is_proxy_uri

        if is_proxy_uri(uri):
            is_server = (tracking_uri or "").lower().startswith(("http://", "https://"))
            server = tracking_uri if is_server else None
            return HttpArtifactRepository(uri, base_url=server)
    return ArtifactRepository(uri)


def serialize_dict(obj: Mapping[str, Any], artifact_file: str) -> bytes:
    """Encode a mapping as JSON (``.json``) or YAML (``.yaml``/``.yml``), chosen by extension."""
    ext = posixpath.splitext(artifact_file)[1].lower()
    if ext == ".json":
        try:
            return json.dumps(obj, indent=2).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"Cannot serialize to {artifact_file!r}: {exc}") from exc
    if ext in (".yaml", ".yml"):
        import yaml

        try:
            text = yaml.safe_dump(dict(obj), sort_keys=False, allow_unicode=True)
        except yaml.YAMLError as exc:
            raise InvalidParameterError(f"Cannot serialize to {artifact_file!r}: {exc}") from exc
        return text.encode("utf-8")
    raise InvalidParameterError(
        f"Invalid artifact file {artifact_file!r}: use a .json, .yaml or .yml extension"
    )


@runtime_checkable
class SupportsSavefig(Protocol):
    """A matplotlib-like figure."""

    def savefig(self, fname: BinaryIO, /, *, format: str) -> None: ...


@runtime_checkable
class SupportsWriteHtml(Protocol):
    """A plotly-like figure."""

    def write_html(self, file: TextIO, /) -> None: ...


def figure_to_bytes(figure: SupportsSavefig | SupportsWriteHtml, artifact_file: str) -> bytes:
    """Render a figure in the format its extension names (png, svg, pdf, jpg; html for plotly)."""
    ext = posixpath.splitext(artifact_file)[1].lower().lstrip(".")
    if ext == "html" and isinstance(figure, SupportsWriteHtml):
        text = io.StringIO()
        figure.write_html(text)
        return text.getvalue().encode("utf-8")
    fmt = _FIGURE_FORMATS.get(ext)
    if fmt is None or not isinstance(figure, SupportsSavefig):
        supported = ", ".join(_FIGURE_FORMATS)
        raise InvalidParameterError(
            f"Invalid figure file {artifact_file!r}: use one of {supported} for a matplotlib "
            "figure, or .html for a figure with write_html()"
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()

"""Artifacts: a run's listing (``/api/2.0/mlflow/artifacts/list``) and the artifact proxy.

The proxy (``/api/2.0/mlflow-artifacts/artifacts/<path>``) serves the server's artifact
destination: PUT streams the body to disk, GET streams the file back, DELETE removes it and
``GET ...artifacts?path=`` lists a folder. Every path is normalized and confined to the
destination first (``..``, absolute paths, encoded dots, backslashes, NUL, schemes and links
out are refused with 400), so no request reads or writes outside it.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import anyio
from fastapi import APIRouter, Depends, Query
from fastapi import Request as HttpRequest
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse

from cairn.entities import FileInfo
from cairn.errors import (
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    UnavailableError,
    UnsafePathError,
)
from cairn.server._responses import JSONResponse
from cairn.server.app import PROXY_ARTIFACT_ROOT
from cairn.server.deps import Client, Settings
from cairn.server.routes._common import API, JSONRoute
from cairn.tracking._paths import ensure_within, normalize_artifact_path
from cairn.tracking._wire import file_info_to_json
from cairn.tracking.artifacts import ArtifactRepository

__all__ = ["list_children", "repository_for", "request_path", "router"]

PROXY = "/api/2.0/mlflow-artifacts"
_WRITE_CHUNK = 1024 * 1024
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_URL_DELIMITERS = (";", "#", "?")
# Served as plain text: the proxy shares the server's origin, so it never renders pages.
_ACTIVE_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "image/svg+xml", "text/javascript", "text/xml"}
)
MPU_UNSUPPORTED = (
    # MLflow clients fall back to a single PUT when the message starts with this sentence.
    "Multipart upload is not supported for the current artifact repository: Cairn streams "
    "uploads of any size in one PUT to /api/2.0/mlflow-artifacts/artifacts/<path>"
)


def _serving(settings: Settings) -> None:
    if not settings.serve_artifacts:
        raise UnavailableError(
            "This server does not proxy artifacts (it was started with --no-serve-artifacts); "
            "clients write to the artifact store directly"
        )


router = APIRouter(tags=["artifacts"], route_class=JSONRoute)
proxy = APIRouter(prefix=PROXY, dependencies=[Depends(_serving)], route_class=JSONRoute)


def _destination(request: HttpRequest) -> str:
    destination: str = request.app.state.artifacts_destination
    return destination


def _local_folder(uri: str) -> str | None:
    """The local folder a destination names, or None for a remote (fsspec) URL."""
    if not _SCHEME.match(uri) or _WINDOWS_DRIVE.match(uri):
        return os.path.abspath(uri)
    parts = urlsplit(uri)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        return os.path.abspath(unquote(parts.path))
    return None


def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}" if rel else root


def repository_for(request: HttpRequest, artifact_uri: str) -> ArtifactRepository:
    """The repository of a run's or model's artifacts; ``mlflow-artifacts:`` maps into ours."""
    if artifact_uri.startswith(PROXY_ARTIFACT_ROOT):
        rel = normalize_artifact_path(urlsplit(artifact_uri).path.lstrip("/"))
        return ArtifactRepository(_join(_destination(request), rel))
    return ArtifactRepository(artifact_uri)


def request_path(path: str | None) -> str:
    """A path from a request, normalized; URL delimiters (``;``, ``#``, ``?``) are refused too,
    at any percent-decoding layer, so no later URL-based store can cut the path short."""
    layer = path or ""
    while True:
        found = next((c for c in _URL_DELIMITERS if c in layer), None)
        if found is not None:
            raise UnsafePathError(
                f"Unsafe artifact path {path!r}: {found!r} is not allowed in artifact paths"
            )
        decoded = unquote(layer)
        if decoded == layer:
            break
        layer = decoded
    return normalize_artifact_path(path)


def _file_path(artifact_path: str) -> str:
    rel = request_path(artifact_path)
    if not rel:
        raise InvalidParameterError(
            f"Invalid artifact path {artifact_path!r}: name a file under the artifact root"
        )
    return rel


@contextlib.contextmanager
def _confined(action: str, rel: str) -> Iterator[None]:
    """Run file-system steps on an already normalized path; errors name ``rel``, never the
    server's own paths (a link's target, the destination folder)."""
    try:
        yield
    except UnsafePathError:
        raise UnsafePathError(
            f"Unsafe artifact path {rel!r}: it leads outside the artifact root (a symlink "
            "pointing out?)"
        ) from None
    except (NotFoundError, FileNotFoundError):
        raise NotFoundError(f"Cannot {action} {rel!r}: no such artifact") from None
    except (PermissionDeniedError, PermissionError):
        raise PermissionDeniedError(f"Cannot {action} {rel!r}: permission denied") from None
    except (IsADirectoryError, NotADirectoryError, FileExistsError):
        raise _in_the_way(action, rel) from None
    except InvalidParameterError as exc:
        if isinstance(exc.__cause__, OSError):  # the repository's wording names server paths
            raise _in_the_way(action, rel) from None
        raise
    except (StoreError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "storage error"
        raise StoreError(f"Cannot {action} {rel!r}: {reason}") from exc


def _in_the_way(action: str, rel: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"Cannot {action} {rel!r}: a file and a folder are in each other's way"
    )


def list_children(repository: ArtifactRepository, path: str | None) -> list[FileInfo]:
    """Direct children of ``path`` (paths relative to the repository's root); [] if missing."""
    rel = request_path(path)
    with _confined("list artifacts in", rel):
        return repository.list_artifacts(rel)


def _info_json(info: FileInfo, name: str) -> dict[str, Any]:
    return file_info_to_json(FileInfo(name, info.is_dir, info.file_size))


# -- a run's artifacts ----------------------------------------------------------------------


@router.get(f"{API}/artifacts/list")
def list_run_artifacts(
    request: HttpRequest,
    client: Client,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """Direct children of ``path`` in the run's artifacts, paths relative to the run's root.

    One page holds every child, so ``page_token`` is accepted and never needed.
    """
    resolved = run_id or run_uuid
    if not resolved:
        raise InvalidParameterError("Missing value for required parameter 'run_id'")
    root_uri = client.get_run(resolved).info.artifact_uri
    files = list_children(repository_for(request, root_uri), path)
    return {"root_uri": root_uri, "files": [file_info_to_json(info) for info in files]}


# -- the proxy --------------------------------------------------------------------------------


@proxy.get("/artifacts")
def list_artifacts(
    request: HttpRequest, path: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    """Children of a folder under the destination, named relative to it ([] if missing)."""
    files = list_children(ArtifactRepository(_destination(request)), path)
    return {"files": [_info_json(info, posixpath.basename(info.path)) for info in files]}


def _local_target(root: str, rel: str) -> tuple[str, str]:
    """The confined final path of an upload and the hidden part file it is written to first."""
    target = ensure_within(root, os.path.join(root, *rel.split("/")))
    if os.path.isdir(target):
        raise InvalidParameterError(f"Cannot upload to {rel!r}: it is a folder")
    parent = os.path.dirname(target)
    _private_folders(parent)
    ensure_within(root, parent)
    return target, os.path.join(parent, f".{os.path.basename(target)}.{uuid.uuid4().hex}.part")


def _private_folders(path: str) -> None:
    """``os.makedirs`` whose every new folder is private (0700), not only the last one."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)


def _private_file(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


async def _receive_into(request: HttpRequest, path: str) -> None:
    """Write the request body to ``path`` as it arrives, in 1 MiB writes off the event loop."""
    async with await anyio.open_file(path, "wb", opener=_private_file) as file:
        buffer = bytearray()
        async for chunk in request.stream():
            buffer += chunk
            if len(buffer) >= _WRITE_CHUNK:
                await file.write(buffer)
                buffer.clear()
        if buffer:
            await file.write(buffer)


def _no_query(request: HttpRequest, artifact_path: str) -> None:
    """A ``?`` ends the path in a URL: whatever follows was meant as part of it, or is a trick."""
    if request.url.query:
        raise UnsafePathError(
            f"Unsafe artifact path {artifact_path!r}: a query string "
            f"({request.url.query!r}) cannot follow an artifact path"
        )


@proxy.put("/artifacts/{artifact_path:path}")
async def upload_artifact(artifact_path: str, request: HttpRequest) -> dict[str, Any]:
    """Store the body at ``artifact_path``; it appears whole (an atomic rename) or not at all."""
    _no_query(request, artifact_path)
    rel = _file_path(artifact_path)
    destination = _destination(request)
    folder = _local_folder(destination)
    with _confined("upload artifact", rel):
        if folder is not None:
            target, part = await run_in_threadpool(_local_target, folder, rel)
            try:
                await _receive_into(request, part)
                await run_in_threadpool(os.replace, part, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(part)
                raise
            return {}
        staging = await run_in_threadpool(tempfile.mkdtemp, None, "cairn-upload-")
        try:
            local = os.path.join(staging, posixpath.basename(rel))
            await _receive_into(request, local)
            repository = ArtifactRepository(destination)
            await run_in_threadpool(repository.log_artifact, local, posixpath.dirname(rel))
        finally:
            await run_in_threadpool(shutil.rmtree, staging, True)
    return {}


def _media_type(rel: str) -> str:
    guessed = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    return "text/plain" if guessed in _ACTIVE_TYPES else guessed


def _file_response(path: str, rel: str, cleanup: BackgroundTask | None = None) -> FileResponse:
    if os.path.isdir(path):
        raise InvalidParameterError(
            f"Artifact {rel!r} is a folder; list it with GET {PROXY}/artifacts?path={rel}"
        )
    if not os.path.isfile(path):
        raise NotFoundError(f"No artifact at {rel!r}")
    return FileResponse(
        path,
        media_type=_media_type(rel),
        headers={"X-Content-Type-Options": "nosniff"},
        background=cleanup,
    )


@proxy.get("/artifacts/{artifact_path:path}")
def download_artifact(artifact_path: str, request: HttpRequest) -> FileResponse:
    """Stream one file from the destination."""
    _no_query(request, artifact_path)
    rel = _file_path(artifact_path)
    destination = _destination(request)
    folder = _local_folder(destination)
    with _confined("download artifact", rel):
        if folder is not None:
            path = ensure_within(folder, os.path.join(folder, *rel.split("/")))
            return _file_response(path, rel)
        # A remote destination: fetched to a private temp folder, removed once it is sent.
        staging = tempfile.mkdtemp(prefix="cairn-download-")
        try:
            path = ArtifactRepository(destination).download_artifacts(rel, staging)
            return _file_response(path, rel, BackgroundTask(shutil.rmtree, staging, True))
        except BaseException:
            shutil.rmtree(staging, True)
            raise


@proxy.delete("/artifacts/{artifact_path:path}")
def delete_artifact(artifact_path: str, request: HttpRequest) -> dict[str, Any]:
    """Delete a file or folder tree under the destination."""
    _no_query(request, artifact_path)
    rel = _file_path(artifact_path)
    repository = ArtifactRepository(_destination(request))
    with _confined("delete artifact", rel):
        if not repository.exists(rel):
            raise NotFoundError(f"No artifact at {rel!r}")
        repository.delete_artifacts(rel)
    return {}


def _multipart_unsupported() -> JSONResponse:
    return JSONResponse(
        {"error_code": "NOT_IMPLEMENTED", "message": MPU_UNSUPPORTED}, status_code=501
    )


@proxy.post("/mpu/create/{artifact_path:path}")
def create_multipart_upload() -> JSONResponse:
    return _multipart_unsupported()


@proxy.post("/mpu/complete/{artifact_path:path}")
def complete_multipart_upload() -> JSONResponse:
    return _multipart_unsupported()


@proxy.post("/mpu/abort/{artifact_path:path}")
def abort_multipart_upload() -> JSONResponse:
    return _multipart_unsupported()


router.include_router(proxy)

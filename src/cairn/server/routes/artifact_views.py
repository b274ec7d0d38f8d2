"""Cairn's artifact endpoints for the web UI, under ``/api/2.0/cairn/artifacts``.

``preview`` reads one artifact of a run and says what it is, parsed where that helps: text,
JSON, YAML and ``MLmodel`` files (parsed with a safe loader), CSV as rows, images by reference.
``get`` returns a run's artifact file: images with their type for ``<img>``, anything else as
an attachment, never as a page of this origin. Both work whichever artifact store the run uses
(proxied ``mlflow-artifacts:`` or direct), as ``artifacts/list`` does.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Query
from fastapi import Request as HttpRequest
from starlette.responses import Response

from cairn.entities import FileInfo
from cairn.errors import InvalidParameterError, NotFoundError
from cairn.server.deps import Client
from cairn.server.routes._common import JSONRoute
from cairn.server.routes.artifacts import list_children, repository_for, request_path
from cairn.server.routes.run_views import CAIRN_API
from cairn.tracking.artifacts import ArtifactRepository

__all__ = ["router"]

PREVIEW_BYTES = 1024 * 1024  # text shown inline; the rest is cut
READ_LIMIT = 16 * 1024 * 1024  # past this a preview only names the size
GET_LIMIT = 64 * 1024 * 1024
CSV_ROWS = 1_000
CSV_COLUMNS = 200
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
YAML_SUFFIXES = (".yaml", ".yml")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
# Headers for every artifact byte served: no sniffing into HTML, no script even if it were.
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}

router = APIRouter(prefix=f"{CAIRN_API}/artifacts", tags=["cairn web UI"], route_class=JSONRoute)


def _locate(
    request: HttpRequest, client: Client, run_id: str, path: str
) -> tuple[ArtifactRepository, str, FileInfo]:
    """The run's repository, the normalized path and its listing entry (a file)."""
    rel = request_path(path)
    if not rel:
        raise InvalidParameterError("Name an artifact file with 'path'")
    repository = repository_for(request, client.get_run(run_id).info.artifact_uri)
    parent = posixpath.dirname(rel)
    for info in list_children(repository, parent or None):
        if info.path == rel:
            if info.is_dir:
                raise InvalidParameterError(f"Artifact {rel!r} is a folder; list it instead")
            return repository, rel, info
    raise NotFoundError(f"Run '{run_id}' has no artifact {rel!r}")


def _suffix(rel: str) -> str:
    return posixpath.splitext(rel)[1].lower()


def _kind(rel: str) -> str:
    name, suffix = posixpath.basename(rel), _suffix(rel)
    if name == "MLmodel":
        return "mlmodel"
    if suffix in IMAGE_TYPES:
        return "image"
    if suffix == ".json":
        return "json"
    if suffix in YAML_SUFFIXES:
        return "yaml"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return "text"


def _decode(data: bytes) -> str | None:
    """Text if the bytes look like text (UTF-8, no NUL), else None."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut at the preview's end
            return data[: exc.start].decode("utf-8")
        return None


def _parsed(kind: str, text: str, rel: str) -> dict[str, Any]:
    """The structured part of a preview; a parse error is reported, not raised."""
    try:
        if kind == "json":
            return {"data": json.loads(text)}
        if kind in ("yaml", "mlmodel"):
            # Round-trip through JSON so dates and other YAML types arrive as strings.
            return {"data": json.loads(json.dumps(yaml.safe_load(text), default=str))}
        if kind == "csv":
            reader = csv.reader(io.StringIO(text), delimiter=CSV_SUFFIXES[_suffix(rel)])
            rows: list[list[str]] = []
            for row in reader:
                if len(rows) == CSV_ROWS:
                    return {"rows": rows, "rows_truncated": True}
                rows.append(row[:CSV_COLUMNS])
            return {"rows": rows, "rows_truncated": False}
    except (ValueError, csv.Error, yaml.YAMLError) as exc:
        return {"parse_error": f"Cannot parse {kind.upper()}: {exc}"}
    return {}


@router.get("/preview")
def preview(
    request: HttpRequest,
    client: Client,
    run_id: Annotated[str, Query(min_length=1)],
    path: Annotated[str, Query(min_length=1)],
) -> dict[str, Any]:
    repository, rel, info = _locate(request, client, run_id, path)
    kind = _kind(rel)
    out: dict[str, Any] = {"path": rel, "size": info.file_size, "kind": kind, "truncated": False}
    if kind == "image":
        return out
    if info.file_size is not None and info.file_size > READ_LIMIT:
        out["kind"] = "too_large"
        return out
    data = repository.read_bytes(rel)
    truncated = len(data) > PREVIEW_BYTES
    text = _decode(data[:PREVIEW_BYTES])
    if text is None:
        out["kind"] = "binary"
        return out
    out["text"] = text
    out["truncated"] = truncated
    if not truncated or kind == "csv":
        out.update(_parsed(kind, text, rel))
    return out


@router.get("/get")
def get_artifact(
    request: HttpRequest,
    client: Client,
    run_id: Annotated[str, Query(min_length=1)],
    path: Annotated[str, Query(min_length=1)],
) -> Response:
    repository, rel, info = _locate(request, client, run_id, path)
    if info.file_size is not None and info.file_size > GET_LIMIT:
        raise InvalidParameterError(
            f"Artifact {rel!r} is over {GET_LIMIT // (1024 * 1024)} MiB: download it with "
            f"'cairn artifacts download {run_id} --path {rel}'"
        )
    media_type = IMAGE_TYPES.get(_suffix(rel))
    headers = dict(SAFE_HEADERS)
    if media_type is None:
        media_type = "application/octet-stream"
        headers["Content-Disposition"] = "attachment"
    return Response(repository.read_bytes(rel), media_type=media_type, headers=headers)

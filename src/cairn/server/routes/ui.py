"""The web UI: the built bundle at ``/``, and the Cairn endpoints it reads.

``index.html`` answers the UI's own paths (``/``, ``/experiments/...``, ``/runs/...``,
``/compare``, ``/models/...``, ``/data``, ``/lineage``), so every view has a URL that can be
shared and reloaded; the content-hashed files under ``/assets/`` are cached for a year. Only
those paths: the API, ``/health``, ``/version``, ``/docs`` and ``/openapi.json`` are never
shadowed, and unknown paths stay JSON 404s. Without a bundle (``ui/`` was not built) the UI's
paths answer a page saying how to build it.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, HTMLResponse, Response

from cairn.errors import NotFoundError
from cairn.server.routes import artifact_views, data_views, metric_views, run_views

__all__ = ["STATIC", "router"]

STATIC = Path(__file__).resolve().parents[1] / "static"
CLIENT_PATHS = (
    "/",
    "/experiments",
    "/experiments/{rest:path}",
    "/runs/{rest:path}",
    "/compare",
    "/models",
    "/models/{rest:path}",
    "/data",
    "/lineage",
)
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
# The page runs only its own bundled script; what it shows from the API is text, never markup.
# Styles come from the bundle's CSS file or are set through the CSSOM, so no inline style either.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}
# The fixed page below: no script, its one inline style allowed.
NOT_BUILT_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn: web UI not built</title></head>
<body style="font-family: sans-serif; max-width: 42rem; margin: 3rem auto; line-height: 1.5">
<h1>The Cairn web UI is not built</h1>
<p>This server has no UI bundle in <code>src/cairn/server/static/</code>. The REST API works
(<a href="/docs">/docs</a>). To build the UI (Node.js 20+ and npm), from the repository root:</p>
<pre>bash scripts/demo.sh          # installs, builds the UI and starts a server
cd ui &amp;&amp; npm ci &amp;&amp; npm run build   # or just build it</pre>
<p>then reload this page.</p>
</body></html>
"""

router = APIRouter()
for _module in (run_views, metric_views, artifact_views, data_views):
    router.include_router(_module.router)


def index() -> Response:
    page = STATIC / "index.html"
    if not page.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503, headers=NOT_BUILT_HEADERS)
    return HTMLResponse(page.read_bytes(), headers=PAGE_HEADERS)


for _path in CLIENT_PATHS:
    router.add_api_route(
        _path, index, methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )


@router.api_route("/assets/{name}", methods=["GET", "HEAD"], include_in_schema=False)
def asset(name: str) -> FileResponse:
    path = STATIC / "assets" / name
    if not _ASSET_NAME.fullmatch(name) or not path.is_file():
        raise NotFoundError(f"No UI asset {name!r}")
    media_type = _MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media_type, headers=ASSET_HEADERS)

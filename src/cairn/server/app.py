"""The app factory: one FastAPI app per ``ServerSettings``, its store held in app state."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cairn import __version__
from cairn.errors import CairnError
from cairn.server._fast_path import FastLogMetric
from cairn.server._limits import BodyLimitMiddleware
from cairn.server._responses import JSONResponse
from cairn.server._web_guard import WebGuard
from cairn.server.settings import ServerSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["create_app"]

PROXY_ARTIFACT_ROOT = "mlflow-artifacts:"


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the tracking server app: REST API, artifact proxy, health and docs."""
    from cairn._config import resolve_store_location
    from cairn.models.registry.client import RegistryClient
    from cairn.models.registry.stores.sql import SqlRegistryStore
    from cairn.server.routes import artifacts, experiments, health, logged_models, registry, runs
    from cairn.server.routes.ui import router as ui_router
    from cairn.tracking.client import TrackingClient
    from cairn.tracking.stores.sql.store import SqlStore

    settings = settings or ServerSettings()
    location = resolve_store_location(settings.backend_store_uri)
    if location.kind != "sql":
        from cairn.errors import InvalidParameterError

        raise InvalidParameterError(
            f"--backend-store-uri must be a folder, sqlite:/// or postgresql:// URI, "
            f"got {settings.backend_store_uri!r}"
        )
    destination = settings.artifacts_destination or location.artifact_root
    store = SqlStore(location.uri, PROXY_ARTIFACT_ROOT if settings.serve_artifacts else destination)
    registry_store = SqlRegistryStore(store.engine)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        registry_store.close()
        store.close()

    app = FastAPI(
        title="Cairn tracking server",
        version=__version__,
        description="MLflow-compatible tracking REST API, artifact proxy and Cairn extensions.",
        default_response_class=JSONResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.client = TrackingClient(settings.backend_store_uri, store=store)
    app.state.registry = RegistryClient(settings.backend_store_uri, store=registry_store)
    app.state.artifacts_destination = destination
    # Added first so it sits inside the body limit (the last middleware added is outermost).
    app.add_middleware(FastLogMetric, store=store)
    if settings.auth:
        from cairn.server.auth import install

        # Outside the fast path (it is checked too), inside the body limit (bodies it reads
        # to find a run or experiment are bounded).
        install(app, settings, store)
    app.add_middleware(
        BodyLimitMiddleware,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    # Outermost: a refused Host or cross-site write costs nothing else, and every answer
    # (413s and the fast path's included) gets the security headers.
    app.add_middleware(
        WebGuard,
        allowed_hosts=settings.allowed_hosts,
        trusted_origins=settings.trusted_origins,
        docs_paths=(app.docs_url or "", app.redoc_url or ""),
    )
    _install_error_handlers(app)
    for module in (health, experiments, runs, logged_models, registry, artifacts):
        app.include_router(module.router)
    app.include_router(ui_router)  # the web UI's own paths only; added last
    return app


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    messages = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        name = ".".join(loc) or "body"
        kind = error.get("type", "")
        if kind == "json_invalid" or (
            isinstance(error.get("input"), (bytes, str)) and name == "body"
        ):
            messages.append("Malformed JSON in request body")
        elif kind == "missing":
            messages.append(f"Missing value for required parameter '{name}'")
        else:
            value = error.get("input")
            messages.append(
                f"Invalid value {value!r} for parameter '{name}': {error.get('msg', 'invalid')}"
            )
    return "; ".join(messages) or "Invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CairnError)
    async def cairn_error(_request: Request, exc: CairnError) -> JSONResponse:
        return _error(exc.http_status, exc.error_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "INVALID_PARAMETER_VALUE", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(
                404, "ENDPOINT_NOT_FOUND", f"No endpoint {request.method} {request.url.path}"
            )
        if exc.status_code == 405:
            return _error(
                405,
                "ENDPOINT_NOT_FOUND",
                f"Method {request.method} not allowed on {request.url.path}",
            )
        return _error(exc.status_code, "BAD_REQUEST", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "INTERNAL_ERROR", f"Internal error: {type(exc).__name__}")

"""The scoring server: a plain ASGI app over one loaded, warmed-up model.

    GET  /ping, /health     200 "OK" (the app exists only once the model is loaded and warm)
    GET  /version           Cairn's version
    POST /invocations       JSON (dataframe_split, dataframe_records, instances, inputs, with
                            optional params) or text/csv → {"predictions": [...]}
    POST /learn             online models: the same inputs plus "targets" → {"learned": n}

No framework sits on the request path: five routes do not need one, and routing, request
objects and response classes would cost more than parsing a one-row body. Errors are
``{"error_code": ..., "message": ...}`` with a 4xx status for anything the caller sent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from cairn import __version__
from cairn.errors import CairnError, InvalidStateError, NotFoundError, RequestLimitExceededError
from cairn.models.serving.payloads import batch_key, decode_json, media_type
from cairn.models.serving.responses import error_json
from cairn.models.serving.scorer import Job, Scorer
from cairn.models.serving.settings import ScoringSettings
from cairn.models.serving.warmup import warm_up

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from cairn.models.pyfunc import PyFuncModel

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = ["ScoringApp", "create_scoring_app"]

# Small JSON bodies are decoded on the event loop so that they can be merged into batches;
# larger ones are decoded on the worker thread, where they do not hold up other requests.
_DECODE_ON_LOOP_BYTES = 64 * 1024
_JSON = (b"content-type", b"application/json")
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_ROUTES = {
    "/ping": "GET",
    "/health": "GET",
    "/version": "GET",
    "/invocations": "POST",
    "/learn": "POST",
}


class BodyTooLargeError(RequestLimitExceededError):
    """A request body over the server's limit."""

    http_status = 413


class DeadlineExceededError(CairnError):
    """The model did not answer within the server's timeout."""

    error_code = "DEADLINE_EXCEEDED"
    http_status = 504


class EndpointNotFoundError(NotFoundError):
    """No such route."""

    error_code = "ENDPOINT_NOT_FOUND"


class MethodNotAllowedError(EndpointNotFoundError):
    """A route asked for with the wrong method."""

    http_status = 405


class _ClientGone(Exception):
    """The client disconnected before its body arrived."""


def create_scoring_app(
    model: PyFuncModel | str | os.PathLike[str], settings: ScoringSettings | None = None
) -> ScoringApp:
    """Load the model (a loaded ``PyFuncModel``, a path or a model URI) and warm it up.

    Args:
        model: what to serve.
        settings: limits, timeout, micro-batching and warm-up; defaults otherwise.
    """
    if isinstance(model, str | os.PathLike):
        from cairn.models.pyfunc import load_model

        model = load_model(model)
    app = ScoringApp(model, settings or ScoringSettings())
    if app.settings.warm_up:
        app.warm_up_body = warm_up(app.scorer)
    return app


class ScoringApp:
    """ASGI callable serving one model; build it with ``create_scoring_app``."""

    def __init__(self, model: PyFuncModel, settings: ScoringSettings) -> None:
        self.model = model
        self.settings = settings
        self.scorer = Scorer(model, micro_batching=settings.micro_batching)
        self.warm_up_body: bytes | None = None  # scored at start-up; sent again at lifespan
        self._timeout = settings.timeout_seconds if settings.timeout_seconds > 0 else None
        self._version = __version__.encode()

    @property
    def warmed_up(self) -> bool:
        """Whether the model scored a warm-up request at start-up."""
        return self.warm_up_body is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        try:
            expected = _ROUTES.get(path)
            if expected is None:
                raise EndpointNotFoundError(f"no endpoint {method} {path}")
            if method != expected:
                raise MethodNotAllowedError(f"{path} takes {expected}, not {method}")
            if method == "GET":
                body = self._version if path == "/version" else b"OK"
                await _respond(send, 200, body, _TEXT)
                return
            await _respond(send, 200, await self._score(scope, receive, path == "/learn"), _JSON)
        except BodyTooLargeError as exc:
            # The rest of the body is never read: close the connection instead of draining it.
            await _respond(send, exc.http_status, error_json(exc), _JSON, close=True)
        except CairnError as exc:
            await _respond(send, exc.http_status, error_json(exc), _JSON)
        except _ClientGone:
            return

    async def _score(self, scope: Scope, receive: Receive, learn: bool) -> bytes:
        content_type, length = _headers(scope)
        limit = self.settings.max_request_bytes
        if length is not None and length > limit:
            raise BodyTooLargeError(_too_large(limit))
        body = await _read_body(receive, limit)
        media = media_type(content_type)
        if learn and not self.model.supports_learning:
            raise InvalidStateError(
                f"this model ({self.model.loader_module}) cannot learn online; "
                "/learn serves river models"
            )
        job = Job(learn=learn, body=body, media=media)
        if media == "json" and len(body) <= _DECODE_ON_LOOP_BYTES:
            job.payload = decode_json(body, learn=learn)
            job.key = None if learn else batch_key(job.payload)
        try:
            return await self.scorer.submit(job, self._timeout)
        except TimeoutError:
            raise DeadlineExceededError(
                f"the model did not answer within {self.settings.timeout_seconds:g} s"
            ) from None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.warm_up_body is not None:
                    for _ in range(2):
                        await self._http(
                            _warm_up_scope(self.warm_up_body), _body(self.warm_up_body), _ignore
                        )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.scorer.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _warm_up_scope(body: bytes) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
    }


def _body(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _ignore(message: Message) -> None:
    return None


def _headers(scope: Scope) -> tuple[str | None, int | None]:
    content_type = length = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return content_type, length


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(_too_large(limit))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"the request body is larger than the server's limit of {limit} bytes"


async def _respond(
    send: Send, status: int, body: bytes, content_type: tuple[bytes, bytes], *, close: bool = False
) -> None:
    headers = [content_type, (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

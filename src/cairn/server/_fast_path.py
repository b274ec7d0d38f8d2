"""A plain-ASGI path for the hottest request, a single ``runs/log-metric``.

Training loops send one request per value; FastAPI's routing, dependency solving and response
handling cost about as much as the database write. Requests of exactly the common shape (run id,
key, numeric value, optional integer timestamp and step) are answered here with the same
validation and store call as the route; anything else, including every malformed request,
goes on to the FastAPI route, which owns the error messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread
import orjson

from cairn.errors import CairnError
from cairn.tracking._wire import float_from_json
from cairn.tracking.client import make_metric

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from cairn.tracking.stores.sql.store import SqlStore

__all__ = ["FastLogMetric"]

PATH = "/api/2.0/mlflow/runs/log-metric"
_FIELDS = frozenset({"run_id", "run_uuid", "key", "value", "timestamp", "step"})
_INT64 = (-(2**63), 2**63 - 1)
_JSON = [(b"content-type", b"application/json")]


def _plain_metric(body: Any) -> tuple[str, str, Any, int | None, int | None] | None:
    """The fields of a log-metric body of the common shape, or None to let the route decide."""
    if not isinstance(body, dict) or not _FIELDS.issuperset(body):
        return None
    run_id = body.get("run_id") or body.get("run_uuid")
    key, value = body.get("key"), body.get("value")
    if not isinstance(run_id, str) or not isinstance(key, str):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    numbers = []
    for name in ("timestamp", "step"):
        number = body.get(name)
        if number is not None and (type(number) is not int or not _INT64[0] <= number <= _INT64[1]):
            return None
        numbers.append(number)
    return run_id, key, value, numbers[0], numbers[1]


class FastLogMetric:
    """Answer plain ``runs/log-metric`` requests without the framework; pass the rest on."""

    def __init__(self, app: ASGIApp, store: SqlStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            fields = _plain_metric(orjson.loads(raw))
        except orjson.JSONDecodeError:
            fields = None
        if fields is None:
            await self.app(scope, _replay(raw), send)
            return
        run_id, key, value, timestamp, step = fields
        try:
            metric = make_metric(key, float_from_json(value), timestamp, step)
            await anyio.to_thread.run_sync(lambda: self.store.log_batch(run_id, metrics=[metric]))
        except CairnError as exc:
            await _respond(send, exc.http_status, orjson.dumps(exc.to_dict()))
            return
        await _respond(send, 200, b"{}")


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

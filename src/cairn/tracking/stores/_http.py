"""The HTTP transport of the REST store: one pooled keep-alive client, retries, error mapping.

httpx and tenacity are imported here and nowhere else in Cairn. ``HttpSession`` keeps one pooled
keep-alive HTTP/1.1 client, retries transient failures (connection errors, 5xx, 429 honouring
``Retry-After``) with exponential backoff and jitter for a bounded time, and turns HTTP errors
into Cairn's exceptions in one place, ``error_from_response``.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx
import tenacity

from cairn import __version__
from cairn.errors import (
    AlreadyExistsError,
    CairnError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    RequestLimitExceededError,
    UnauthenticatedError,
    UnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

__all__ = [
    "ENV_HTTP_TIMEOUT",
    "ENV_RETRY_SECONDS",
    "ENV_TRACKING_PASSWORD",
    "ENV_TRACKING_TOKEN",
    "ENV_TRACKING_USERNAME",
    "HttpSession",
    "error_from_response",
]

ENV_RETRY_SECONDS = "CAIRN_HTTP_RETRY_SECONDS"
# Credentials for a server started with --auth: a token, else a username and password.
ENV_TRACKING_TOKEN = "CAIRN_TRACKING_TOKEN"
ENV_TRACKING_USERNAME = "CAIRN_TRACKING_USERNAME"
ENV_TRACKING_PASSWORD = "CAIRN_TRACKING_PASSWORD"
ENV_HTTP_TIMEOUT = "CAIRN_HTTP_TIMEOUT"
DEFAULT_RETRY_SECONDS = 10.0
DEFAULT_TIMEOUT = 60.0

_CHUNK = 1 << 20
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 2.0
_BACKOFF_JITTER = 0.25

_log = logging.getLogger("cairn.tracking")

_ERRORS: dict[str, type[CairnError]] = {
    "RESOURCE_DOES_NOT_EXIST": NotFoundError,
    "ENDPOINT_NOT_FOUND": NotFoundError,
    "INVALID_PARAMETER_VALUE": InvalidParameterError,
    "BAD_REQUEST": InvalidParameterError,
    "MALFORMED_REQUEST": InvalidParameterError,
    "RESOURCE_ALREADY_EXISTS": AlreadyExistsError,
    "INVALID_STATE": InvalidStateError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "UNAUTHENTICATED": UnauthenticatedError,
    "REQUEST_LIMIT_EXCEEDED": RequestLimitExceededError,
    "TEMPORARILY_UNAVAILABLE": UnavailableError,
}
# Failures worth another attempt: the request may not have reached the server, or the server
# dropped the connection. Every write Cairn retries is idempotent (or carries a request id).
_RETRY_TRANSPORT = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise InvalidParameterError(f"${name} must be a number of seconds, got {raw!r}") from None


def _credentials() -> tuple[dict[str, str], httpx.Auth | None]:
    """Headers and auth from $CAIRN_TRACKING_TOKEN, else $CAIRN_TRACKING_USERNAME/PASSWORD."""
    token = os.environ.get(ENV_TRACKING_TOKEN, "").strip()
    if token:
        return {"Authorization": f"Bearer {token}"}, None
    username = os.environ.get(ENV_TRACKING_USERNAME, "")
    if username:
        return {}, httpx.BasicAuth(username, os.environ.get(ENV_TRACKING_PASSWORD, ""))
    return {}, None


def error_from_response(response: httpx.Response) -> CairnError:
    """The Cairn exception for an HTTP error: by ``error_code``, else by status."""
    code: str | None = None
    message: str | None = None
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = data.get("error_code") if isinstance(data.get("error_code"), str) else None
        message = data.get("message") if isinstance(data.get("message"), str) else None
    status = response.status_code
    if not message:
        text = response.text.strip()[:300] if response.text else ""
        request = response.request
        message = f"HTTP {status} {response.reason_phrase} from {request.method} {request.url}"
        message += f": {text}" if text else ""
    cls = _ERRORS.get(code or "")
    if cls is None:
        cls = UnavailableError if status in (502, 503, 504) else CairnError
    error = cls(message)
    error.http_status = status
    if code:
        error.error_code = code
    return error


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _RetryableResponse(Exception):
    """A 5xx or 429 answer; becomes Cairn's error if it is still the answer when time runs out."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = _retry_after(response)


def _check_retryable(response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or (500 <= status < 600 and status not in (501, 505)):
        raise _RetryableResponse(response)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        request = response.request
        raise CairnError(
            f"Unexpected answer to {request.method} {request.url}: not JSON "
            f"({response.text[:100]!r}); is this a Cairn or MLflow tracking server?"
        ) from None
    return data if isinstance(data, dict) else {}


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


class HttpSession:
    """One server's pooled keep-alive HTTP/1.1 client with bounded retries; thread-safe.

    Args:
        base_url: ``http(s)://host:port[/prefix]``.
        retry_seconds: how long to keep retrying one request ($CAIRN_HTTP_RETRY_SECONDS, 10 s).
        timeout: connect/read/write timeout of one attempt ($CAIRN_HTTP_TIMEOUT, 60 s).
    """

    def __init__(
        self, base_url: str, retry_seconds: float | None = None, timeout: float | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_seconds = (
            _env_seconds(ENV_RETRY_SECONDS, DEFAULT_RETRY_SECONDS)
            if retry_seconds is None
            else retry_seconds
        )
        seconds = _env_seconds(ENV_HTTP_TIMEOUT, DEFAULT_TIMEOUT) if timeout is None else timeout
        transport = httpx.HTTPTransport(
            http1=True,
            http2=False,
            retries=0,
            limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0
            ),
            # httpcore sets TCP_NODELAY too; without it every request whose headers and body
            # go out in two writes stalls ~40 ms on Nagle + delayed ACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        credential_headers, auth = _credentials()
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
            headers={"User-Agent": f"cairn/{__version__}", **credential_headers},
            auth=auth,
        )

    def __repr__(self) -> str:
        return f"HttpSession({self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _RetryableResponse) and error.retry_after is not None:
            return error.retry_after
        # Exponential backoff (0.1 s doubling, at most 2 s) plus jitter, so clients that failed
        # together do not come back together.
        backoff = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2.0 ** (state.attempt_number - 1))
        return backoff + random.uniform(0, _BACKOFF_JITTER)

    def _send(self, attempt: Callable[[], httpx.Response], retry: bool = True) -> httpx.Response:
        """Run ``attempt`` until it succeeds or the retry time is spent; the one place that
        turns transport failures into ``UnavailableError``."""
        try:
            if not retry or self.retry_seconds <= 0:
                return attempt()
            retrying = tenacity.Retrying(
                stop=tenacity.stop_before_delay(self.retry_seconds),
                wait=self._wait,
                retry=tenacity.retry_if_exception_type((*_RETRY_TRANSPORT, _RetryableResponse)),
                reraise=True,
                before_sleep=_log_retry,
            )
            return retrying(attempt)
        except _RetryableResponse as exc:
            return exc.response
        except httpx.InvalidURL as exc:
            raise InvalidParameterError(f"Invalid tracking server URL: {exc}") from exc
        except httpx.TransportError as exc:
            waited = f" for {self.retry_seconds:g} s" if retry and self.retry_seconds > 0 else ""
            raise UnavailableError(
                f"Cannot reach the tracking server at {self.base_url} "
                f"({type(exc).__name__}: {exc}; retried{waited})"
            ) from exc

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        """One JSON request; the decoded object answer, or Cairn's error for the failure."""
        query = {k: v for k, v in (params or {}).items() if v is not None}

        def attempt() -> httpx.Response:
            response = self._client.request(method, path, params=query or None, json=body)
            _check_retryable(response)
            return response

        response = self._send(attempt, retry)
        if response.is_success:
            return _json_object(response)
        raise error_from_response(response)

    def upload(self, path: str, source: Path | bytes) -> None:
        """PUT raw bytes, streaming a file from disk (re-read from the start on each attempt)."""

        def attempt() -> httpx.Response:
            if isinstance(source, bytes):
                response = self._client.put(path, content=source)
            else:
                size = source.stat().st_size
                response = self._client.put(
                    path,
                    content=_file_chunks(source),
                    headers={
                        "Content-Length": str(size),
                        "Content-Type": "application/octet-stream",
                    },
                )
            _check_retryable(response)
            return response

        response = self._send(attempt)
        if not response.is_success:
            raise error_from_response(response)

    def download(self, path: str, target: Path) -> None:
        """GET into a local file, streamed; the file is only created once the server said yes."""

        def attempt() -> httpx.Response:
            with self._client.stream("GET", path) as response:
                if not response.is_success:
                    response.read()
                    _check_retryable(response)
                    return response
                with target.open("wb") as handle:
                    for chunk in response.iter_bytes(_CHUNK):
                        handle.write(chunk)
            return response

        try:
            response = self._send(attempt)
        except BaseException:
            target.unlink(missing_ok=True)  # no half-written file left behind
            raise
        if not response.is_success:
            raise error_from_response(response)

    def read(self, path: str) -> bytes:
        def attempt() -> httpx.Response:
            response = self._client.get(path)
            _check_retryable(response)
            return response

        response = self._send(attempt)
        if not response.is_success:
            raise error_from_response(response)
        return response.content

    def probe(self, path: str) -> bool:
        """Whether GET ``path`` finds something, without downloading it."""

        def attempt() -> httpx.Response:
            with self._client.stream("GET", path) as response:
                if response.status_code != 200:
                    response.read()
                    _check_retryable(response)
            return response

        response = self._send(attempt)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise error_from_response(response)


def _log_retry(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    sleep = state.next_action.sleep if state.next_action is not None else 0.0
    _log.debug("retrying in %.2f s after %r (attempt %d)", sleep, error, state.attempt_number)

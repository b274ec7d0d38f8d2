"""The one place access is decided: an ASGI middleware in front of every route.

For each request it finds the route the app will run (by the app's own route list, in order),
that route's ``Rule`` in ``rules.RULES``, authenticates the caller (HTTP Basic or a bearer token)
unless the rule is public, and checks each permission the rule names. A request that matches no
rule is refused, whatever route it would reach. It sits outside the ``runs/log-metric`` fast
path, so that path is covered too.

Checking a password (argon2) costs tens of milliseconds, so a verified ``Authorization`` header
is remembered (as a hash) for ``auth_cache_seconds``; permissions likewise. Changes made through
this server's own endpoints clear the caches at once; changes made elsewhere (the CLI, another
worker) apply within that time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import orjson
from starlette.datastructures import QueryParams
from starlette.routing import compile_path

from cairn.errors import (
    CairnError,
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
    RequestLimitExceededError,
    UnauthenticatedError,
)
from cairn.server.auth.entities import Permission, User
from cairn.server.auth.rules import RULES, Access, MissingParameter, RequestData, Rule

if TYPE_CHECKING:
    import re

    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from cairn.server.auth.stores.sql import AuthStore
    from cairn.server.settings import ServerSettings

__all__ = ["AuthMiddleware", "AuthState", "LoginLimiter", "current_user"]

USER_KEY = "cairn_user"
_CACHE_LIMIT = 50_000
_CHALLENGE = (b"www-authenticate", b'Basic realm="Cairn", charset="UTF-8"')


def current_user(scope: Scope) -> User:
    """The signed-in caller of a request the middleware let through."""
    user = scope.get("state", {}).get(USER_KEY)
    if not isinstance(user, User):
        raise UnauthenticatedError("Authentication required")
    return user


class NeedsStore(Exception):
    """What is asked is not cached: ask again off the event loop, where the store may be read."""


class LoginLimiter:
    """Counts failed sign-ins per key (client address, username); too many → refused a while."""

    def __init__(self, max_failures: int, window_seconds: float) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until ``keys`` may try again, or None if they may now."""
        now = time.monotonic()
        with self._lock:
            waits = [
                times[-self.max_failures] + self.window - now
                for key in keys
                if len(times := self._recent(key, now)) >= self.max_failures
            ]
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > _CACHE_LIMIT:
                self._failures.clear()  # bounded memory under a flood of distinct keys
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, deque(maxlen=self.max_failures)).append(now)


class _TTLCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: Any, value: Any) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._items) >= _CACHE_LIMIT:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.seconds, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class AuthState:
    """Authentication state of one app: the store, caches, the login limiter, the default."""

    def __init__(self, store: AuthStore, settings: ServerSettings) -> None:
        self.store = store
        self.default = Permission.parse(settings.auth_default_permission)
        self.limiter = LoginLimiter(settings.auth_max_failures, settings.auth_failure_window)
        self._credentials = _TTLCache(settings.auth_cache_seconds)
        self._permissions = _TTLCache(settings.auth_cache_seconds)
        self._experiments: dict[tuple[str, str], str] = {}  # a run never changes experiment
        self._key = secrets.token_bytes(32)

    def changed(self, *, credentials: bool = True) -> None:
        """Users or tokens (``credentials``), or permissions changed: forget what was cached."""
        if credentials:
            self._credentials.clear()
        self._permissions.clear()

    # -- who is calling -----------------------------------------------------------------------

    def authenticate(self, header: str, client: str, cached_only: bool = False) -> User:
        """The caller; ``cached_only``: raise ``NeedsStore`` rather than query the store."""
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            username, password = _basic(value)
            keys: tuple[str, ...] = (f"ip:{client}", f"user:{username}")
            self._check_limit(keys)
            return self._cached(
                header, keys, lambda: self.store.check_password(username, password), cached_only
            )
        if scheme.lower() == "bearer" and value:
            keys = (f"ip:{client}",)
            self._check_limit(keys)
            return self._cached(header, keys, lambda: self.store.user_for_token(value), cached_only)
        raise UnauthenticatedError(
            "Unsupported Authorization header: use HTTP Basic or 'Bearer <token>'"
        )

    def _check_limit(self, keys: tuple[str, ...]) -> None:
        wait = self.limiter.retry_after(*keys)
        if wait is not None:
            error = RequestLimitExceededError(
                f"Too many failed sign-in attempts; try again in {max(1, round(wait))} s"
            )
            error.retry_after = max(1, round(wait))  # type: ignore[attr-defined]
            raise error

    def _cached(self, header: str, keys: tuple[str, ...], check: Any, cached_only: bool) -> User:
        digest = hmac.new(self._key, header.encode("utf-8", "surrogatepass"), hashlib.sha256)
        key = digest.digest()
        user = self._credentials.get(key)
        if user is None:
            if cached_only:
                raise NeedsStore
            user = check()
            if user is None:
                self.limiter.failed(*keys)
                raise UnauthenticatedError("Invalid username, password or token")
            self._credentials.put(key, user)
        assert isinstance(user, User)
        return user

    # -- what they may do ---------------------------------------------------------------------

    def authorize(
        self, user: User, rule: Rule, request: RequestData, cached_only: bool = False
    ) -> None:
        """Raise PermissionDeniedError unless every check of ``rule`` passes for ``user``;
        ``cached_only``: raise ``NeedsStore`` rather than query the store."""
        if rule.access is Access.ADMIN and not user.is_admin:
            raise PermissionDeniedError("Only admins may do this")
        if user.is_admin:
            return
        for check in rule.checks:
            for resource in check.locate(request):
                have = self.permission(user, check.kind, resource, cached_only)
                if have < check.permission:
                    raise PermissionDeniedError(
                        f"User {user.username!r} needs {check.permission.name} permission on "
                        f"{_describe(check.kind, resource)}"
                    )

    def permission(
        self, user: User, kind: str, resource: str, cached_only: bool = False
    ) -> Permission:
        if user.is_admin:
            return Permission.MANAGE
        if kind == "user":
            return Permission.MANAGE if resource == user.username else Permission.NO_PERMISSIONS
        key = (user.user_id, kind, resource)
        found = self._permissions.get(key)
        if found is None:
            if cached_only:
                raise NeedsStore
            found = self._lookup(user, kind, resource)
            self._permissions.put(key, found)
        assert isinstance(found, Permission)
        return found

    def _lookup(self, user: User, kind: str, resource: str) -> Permission:
        if kind == "model":
            explicit = self.store.model_permission(user.user_id, resource)
            return self.default if explicit is None else explicit
        if kind == "token":
            try:
                owner = self.store.token_owner(int(resource))
            except ValueError:
                raise InvalidParameterError(f"Invalid token id {resource!r}") from None
            return Permission.MANAGE if owner == user.username else Permission.NO_PERMISSIONS
        if kind == "artifact":
            experiment_id = _artifact_experiment(resource)
            if experiment_id is None:
                return Permission.NO_PERMISSIONS  # the root, or not an experiment's files
        else:
            experiment_id = self._experiment_of(kind, resource)
            if experiment_id is None:
                return self.default  # nothing by that id: the route answers 404
        explicit = self.store.experiment_permission(user.user_id, experiment_id)
        return self.default if explicit is None else explicit

    def _experiment_of(self, kind: str, resource: str) -> str | None:
        if kind == "experiment":
            return resource
        if kind == "experiment_name":
            return self.store.experiment_by_name(resource)
        found = self._experiments.get((kind, resource))
        if found is not None:
            return found
        if kind == "run":
            found = self.store.experiment_of_run(resource)
        elif kind == "logged_model":
            found = self.store.experiment_of_logged_model(resource)
        else:
            raise PermissionDeniedError(f"No permission check for {kind!r}")  # fail closed
        if found is not None:
            if len(self._experiments) >= _CACHE_LIMIT:
                self._experiments.clear()
            self._experiments[(kind, resource)] = found
        return found

    def readable(self, user: User, kind: str, ids: list[str]) -> set[str]:
        """Which of ``ids`` (experiment ids or model names) the user may READ: one query."""
        if user.is_admin:
            return set(ids)
        explicit = (
            self.store.experiment_permissions_of(user.user_id)
            if kind == "experiment"
            else self.store.model_permissions_of(user.user_id)
        )
        return {i for i in ids if explicit.get(i, self.default) >= Permission.READ}

    def grant(self, user: User, kind: str, resource: str) -> None:
        if kind == "experiment":
            self.store.grant_creator(user.user_id, experiment_id=resource)
        else:
            self.store.grant_creator(user.user_id, model_name=resource)
        self._permissions.clear()


def _describe(kind: str, resource: str) -> str:
    names = {
        "experiment": f"experiment {resource}",
        "experiment_name": f"experiment {resource!r}",
        "run": f"the experiment of run {resource}",
        "logged_model": f"the experiment of logged model {resource}",
        "artifact": f"the experiment owning artifact path {resource!r}",
        "model": f"registered model {resource!r}",
        "user": f"user {resource!r}",
        "token": f"token {resource}",
    }
    return names.get(kind, f"{kind} {resource!r}")


def _artifact_experiment(path: str) -> str | None:
    """The experiment id a proxy path starts with (``<experiment>/<run>/artifacts/...``)."""
    from cairn.tracking._paths import normalize_artifact_path

    first = normalize_artifact_path(path).split("/", 1)[0]  # UnsafePathError → 400
    return first if first.isdigit() and first.isascii() else None


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise UnauthenticatedError("Malformed HTTP Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise UnauthenticatedError("Malformed HTTP Basic credentials: expected user:password")
    return username, password


def _route_path(scope: Scope) -> str:
    """The path routing sees (without the root path), as starlette computes it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (path == root or path[len(root)] == "/"):
        return path[len(root) :]
    return path


class AuthMiddleware:
    """Authenticate and authorize every HTTP request by the rule of the route it reaches."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, state: AuthState) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.state = state
        self._routes: list[tuple[re.Pattern[str], dict[str, Any], str, frozenset[str]]] = []

    def _table(self) -> list[tuple[re.Pattern[str], dict[str, Any], str, frozenset[str]]]:
        if not self._routes:
            self._routes = route_table(self.fastapi_app)
        return self._routes

    def match(self, method: str, path: str) -> tuple[Rule | None, dict[str, str], bool]:
        """The rule of the route the app will run, its path parameters, and whether some
        route has this path (for a 405 rather than a 404)."""
        path_exists = False
        for regex, convertors, template, methods in self._table():
            found = regex.match(path)
            if found is None:
                continue
            path_exists = True
            if method in methods:
                params = {
                    name: convertors[name].convert(value)
                    for name, value in found.groupdict().items()
                }
                rule = RULES.get((method, template))
                # A route without a rule is refused as if it did not exist.
                return rule, params, rule is not None
        return None, {}, path_exists

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # no websocket routes: refuse by closing
        method, path = scope["method"], _route_path(scope)
        rule, params, path_exists = self.match(method, path)
        if rule is not None and rule.access is Access.PUBLIC:
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        if header is None:
            await _error(
                send,
                UnauthenticatedError(
                    "Authentication required: send HTTP Basic credentials or 'Bearer <token>'"
                ),
            )
            return
        client = scope.get("client") or ("unknown", 0)
        try:
            try:  # answered from the cache without leaving the event loop, most of the time
                user = self.state.authenticate(header, str(client[0]), cached_only=True)
            except NeedsStore:
                user = await anyio.to_thread.run_sync(
                    self.state.authenticate, header, str(client[0])
                )
        except CairnError as exc:
            await _error(send, exc)
            return
        if rule is None:
            if path_exists:
                await _error(
                    send,
                    _status(405, "ENDPOINT_NOT_FOUND", f"Method {method} not allowed on {path}"),
                )
            else:
                await _error(
                    send, NotFoundError(f"No endpoint {method} {path}"), code="ENDPOINT_NOT_FOUND"
                )
            return
        scope.setdefault("state", {})[USER_KEY] = user
        raw: bytes | None = None
        if rule.reads_body:
            raw = await _read_body(receive)
            if raw is None:
                return  # the client went away
            receive = _replay(raw, receive)
        try:
            data = RequestData(params, QueryParams(scope.get("query_string", b"")), _json(raw))
            try:
                self.state.authorize(user, rule, data, cached_only=True)
            except NeedsStore:
                await anyio.to_thread.run_sync(self.state.authorize, user, rule, data)
        except MissingParameter as exc:
            await _error(
                send, InvalidParameterError(f"Missing value for required parameter '{exc.name}'")
            )
            return
        except CairnError as exc:
            await _error(send, exc)
            return
        if rule.filter is None and rule.grant is None:
            await self.app(scope, receive, send)
            return
        await self._rewrite(scope, receive, send, user, rule, data)

    async def _rewrite(
        self, scope: Scope, receive: Receive, send: Send, user: User, rule: Rule, data: RequestData
    ) -> None:
        """Run the route with its answer held back: filter a listing, or grant its creator."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, hold)
        content = b"".join(chunks)
        if start.get("status") == 200:
            try:
                content = await anyio.to_thread.run_sync(self._after, user, rule, data, content)
            except CairnError as exc:
                await _error(send, exc)
                return
        headers = [
            (name, value) for name, value in start.get("headers", []) if name != b"content-length"
        ]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _after(self, user: User, rule: Rule, data: RequestData, content: bytes) -> bytes:
        answer = orjson.loads(content) if content else {}
        if rule.grant is not None:
            source = answer if rule.grant.kind == "experiment" else data.body
            resource = source.get(rule.grant.field) if isinstance(source, dict) else None
            if isinstance(resource, str) and resource:
                self.state.grant(user, rule.grant.kind, resource)
            return content
        if rule.filter is not None and isinstance(answer, dict):
            items = answer.get(rule.filter.key)
            if isinstance(items, list):
                ids = [str(item.get(rule.filter.id_field)) for item in items]
                keep = self.state.readable(user, rule.filter.kind, ids)
                answer[rule.filter.key] = [
                    item for item, i in zip(items, ids, strict=True) if i in keep
                ]
                return orjson.dumps(answer)
        return content


def route_table(app: FastAPI) -> list[tuple[re.Pattern[str], dict[str, Any], str, frozenset[str]]]:
    """Every route of the app in routing order: path regex, convertors, template, methods."""
    from fastapi.routing import iter_route_contexts

    table = []
    for context in iter_route_contexts(app.routes):
        template = context.path
        if template is None:
            continue
        regex, _, convertors = compile_path(template)
        table.append((regex, convertors, template, frozenset(context.methods or ())))
    return table


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _json(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _status(status: int, code: str, message: str) -> CairnError:
    error = CairnError(message)
    error.http_status = status
    error.error_code = code
    return error


async def _error(send: Send, exc: CairnError, code: str | None = None) -> None:
    body = orjson.dumps({"error_code": code or exc.error_code, "message": exc.message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.http_status == 401:
        headers.append(_CHALLENGE)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

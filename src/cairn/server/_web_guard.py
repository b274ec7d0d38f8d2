"""Browser-facing protections, in one pass over the request headers (ASGI middleware).

- **Host validation** against DNS rebinding: a page on a name the attacker controls that later
  resolves to this server sends that name as ``Host``; only ``localhost``, IP addresses and the
  configured names are answered (others get 400).
- **CSRF**: a state-changing request (not GET/HEAD/OPTIONS) that a browser sends from another
  origin is refused with 403. Browsers say where a request comes from (``Sec-Fetch-Site``,
  ``Origin``), and a request carrying cookies but neither header nor a ``Referer`` is refused
  too. Clients that are not browsers send none of these and pass.
- **Security headers** on every response that does not set its own: ``nosniff``, no framing
  (``X-Frame-Options``, CSP ``frame-ancestors``), a CSP that runs no script at all (pages set
  theirs; the API docs page gets one that allows only the hashes of its own inline script).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["WebGuard", "host_name"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LOOPBACK_NAMES = frozenset({"localhost"})
# Names test clients use (Starlette's TestClient sends ``testserver``); empty outside tests.
EXTRA_NAMES: frozenset[str] = frozenset()
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net {hashes}; "
    "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_DEFAULT_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_DEFAULT_NAMES = frozenset(name for name, _ in _DEFAULT_HEADERS)
_CSP = b"content-security-policy"
_API_CSP = API_CSP.encode()
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.I)
_CACHE_LIMIT = 256


def host_name(value: str) -> str:
    """The name part of a ``Host`` header: no port, no brackets, lower case, no final dot."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an origin or URL, the port dropped when it is the default."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or (parts.scheme, port) in (("http", 80), ("https", 443)):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _own_netloc(host_header: str) -> str:
    """The ``Host`` header without a default port (either: a proxy may have ended TLS)."""
    for default in (":80", ":443"):
        if host_header.endswith(default):
            return host_header[: -len(default)]
    return host_header


class WebGuard:
    """Host validation, cross-site write refusal and default security headers."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Iterable[str] = (),
        trusted_origins: Iterable[str] = (),
        docs_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        names = {host_name(h) for h in allowed_hosts if h.strip()}
        self.any_host = "*" in names
        self.suffixes = tuple(
            "." + name.lstrip("*.") for name in names if name.startswith(("*.", "."))
        )
        self.names = frozenset(n for n in names if not n.startswith(("*", "."))) | LOOPBACK_NAMES
        self.trusted = frozenset(
            n for n in (_origin(o.strip().lower()) for o in trusted_origins) if n is not None
        )
        self.docs_paths = frozenset(p for p in docs_paths if p)
        self._accepted: set[bytes] = set()

    def _host_allowed(self, raw: bytes) -> bool:
        if raw in self._accepted:
            return True
        name = host_name(raw.decode("latin-1"))
        allowed = (
            self.any_host
            or name in self.names
            or name.endswith(".localhost")
            or _is_ip(name)
            or name.endswith(self.suffixes)
            or name in EXTRA_NAMES
        )
        if allowed and len(self._accepted) < _CACHE_LIMIT:
            self._accepted.add(raw)
        return allowed

    def _ours(self, own: str, origin: str | None) -> bool:
        """Whether ``origin`` is this server (same host and port, either scheme: a proxy may
        end TLS) or a trusted origin (scheme included)."""
        if origin is None:
            return False
        return origin.split("://", 1)[1] == own or origin in self.trusted

    def _cross_site(
        self,
        own: str,
        origin: str | None,
        referer: str | None,
        fetch_site: str | None,
        cookies: bool,
    ) -> str | None:
        """Why a state-changing request looks cross-site, or None if it does not."""
        if origin is not None:
            if not self._ours(own, None if origin == "null" else _origin(origin.lower())):
                return f"its origin {origin!r} is not this server's"
            return None
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return f"the browser marks it {fetch_site!r}"
        if referer is not None:
            if not self._ours(own, _origin(referer.lower())):
                return "its Referer is not a page of this server"
            return None
        if cookies and fetch_site is None:
            return "it carries cookies but no Origin or Referer header"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = referer = fetch_site = None
        cookies = authorization = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
            elif name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1").lower()
            elif name == b"cookie":
                cookies = True
            elif name == b"authorization":
                authorization = True
        if host is not None and not self._host_allowed(host):
            shown = host.decode("latin-1")
            await _refuse(
                send,
                400,
                "BAD_REQUEST",
                f"Host {shown!r} is not served here: start the server with "
                f"--allowed-hosts {host_name(shown)} if clients use that name",
            )
            return
        if scope["method"] not in SAFE_METHODS and (
            origin is not None or referer is not None or fetch_site is not None or cookies
        ):
            own = _own_netloc(host.decode("latin-1").lower()) if host is not None else ""
            reason = self._cross_site(
                own,
                origin,
                referer,
                fetch_site,
                cookies and not authorization,
            )
            if reason is not None:
                await _refuse(
                    send,
                    403,
                    "PERMISSION_DENIED",
                    f"Cross-site request refused: {reason}. Browser pages of other origins "
                    "cannot change this server's data (see --trusted-origins)",
                )
                return
        if scope["path"] in self.docs_paths:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_defaults(message.get("headers", []), _API_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The API docs page: buffered (a few KiB) so its CSP can name its inline scripts."""
        start: Message | None = None
        body = bytearray()

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                assert start is not None
                hashes = " ".join(
                    "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
                    for script in _INLINE_SCRIPT.findall(bytes(body))
                )
                start["headers"] = _with_defaults(
                    start.get("headers", []), DOCS_CSP.format(hashes=hashes)
                )
                await send(start)
                await send({"type": "http.response.body", "body": bytes(body)})
                return
            await send(message)

        await self.app(scope, receive, buffer)


def _with_defaults(
    headers: Iterable[tuple[bytes, bytes]], csp: bytes | str
) -> list[tuple[bytes, bytes]]:
    out = list(headers)
    present = {name.lower() for name, _ in out}
    if present.isdisjoint(_DEFAULT_NAMES):
        out += _DEFAULT_HEADERS
    else:
        out.extend(header for header in _DEFAULT_HEADERS if header[0] not in present)
    if _CSP not in present:
        out.append((_CSP, csp if isinstance(csp, bytes) else csp.encode()))
    return out


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error_code": code, "message": message})
    headers = _with_defaults(
        [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        API_CSP,
    )
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""What URIs remote clients may hand the server: model version sources, experiment locations.

A client-sent URI is stored and later read by the server (artifact listings) or by other users'
clients (``models:/`` loads), so it must not name this machine's files or a private network:

- ``mlflow-artifacts:``, ``runs:/`` and ``models:/`` URIs, with a path that stays inside (no
  ``..``, encoded or not, no backslashes, no NUL);
- object stores (``s3://``, ``gs://``, ...), with the same path rules;
- ``http(s)://`` only to a public host: no loopback, private, link-local, reserved or
  unspecified address (also in the short or numeric forms ``127.1``, ``2130706433``), and no
  ``localhost``/``.local``/``.internal`` name;
- ``file:``, a bare local path or an empty scheme: only when the server does not proxy
  artifacts (its clients write to its artifact folder directly) and only inside that folder.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from cairn.errors import InvalidParameterError, UnsafePathError
from cairn.tracking._paths import ensure_within, normalize_artifact_path

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["check_model_source", "check_remote_host", "client_source"]

REGISTRY_SCHEMES = frozenset({"mlflow-artifacts", "runs", "models"})
OBJECT_STORE_SCHEMES = frozenset(
    {"s3", "s3a", "gs", "gcs", "wasbs", "abfss", "hdfs", "viewfs", "oss", "dbfs"}
)
WEB_SCHEMES = frozenset({"http", "https"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _refuse(what: str, uri: str, reason: str) -> InvalidParameterError:
    return InvalidParameterError(f"Invalid {what} {uri!r}: {reason}")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, including inet_aton's short and numeric forms."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_remote_host(host: str | None) -> str | None:
    """Why fetching from ``host`` could reach this machine or a private network, or None."""
    if not host:
        return "it names no host"
    name = host.lower().rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        return f"{host!r} is a local name"
    address = _ip(name)
    if address is not None and not address.is_global:
        return f"{host!r} is a loopback, private, link-local or reserved address"
    return None


def _check_path(what: str, uri: str, path: str) -> None:
    try:
        normalize_artifact_path(unquote(path).lstrip("/"))
    except UnsafePathError as exc:
        reason = exc.message.split(": ", 1)[-1]
        raise _refuse(what, uri, f"its path leaves its root ({reason})") from None


def check_model_source(
    uri: str, what: str = "model version source", *, local_root: str | None = None
) -> str:
    """``uri`` if a remote client may register it, else InvalidParameterError saying why.

    ``local_root``: the artifact folder clients write to directly (``--no-serve-artifacts``);
    local paths and ``file:`` URIs inside it are accepted, none otherwise.
    """
    if "\x00" in uri:
        raise _refuse(what, uri, "NUL characters are not allowed")
    if "\\" in uri:
        raise _refuse(what, uri, "backslashes are not allowed")
    match = _SCHEME.match(uri)
    if match is None or _DRIVE.match(uri) or uri.lower().startswith("file:"):
        return _check_local(what, uri, local_root)
    scheme = match.group(1).lower()
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise _refuse(what, uri, str(exc)) from None
    if scheme in REGISTRY_SCHEMES:
        if parts.netloc:
            raise _refuse(what, uri, f"{scheme}: URIs sent to this server name no host")
        _check_path(what, uri, parts.path)
        return uri
    if scheme in OBJECT_STORE_SCHEMES:
        _check_path(what, uri, parts.path)
        return uri
    if scheme in WEB_SCHEMES:
        try:
            host = parts.hostname
        except ValueError:
            host = None
        reason = check_remote_host(host)
        if reason is not None:
            raise _refuse(
                what, uri, f"{reason}; the server refuses URIs that reach it or its network"
            )
        _check_path(what, uri, parts.path)
        return uri
    allowed = sorted(REGISTRY_SCHEMES | OBJECT_STORE_SCHEMES | WEB_SCHEMES)
    raise _refuse(
        what, uri, f"the scheme {scheme!r} is not allowed; use one of {', '.join(allowed)}"
    )


def _check_local(what: str, uri: str, local_root: str | None) -> str:
    if local_root is None:
        raise _refuse(
            what,
            uri,
            "local paths and file: URIs are not accepted from clients of this server; "
            "register runs:/<run_id>/<path>, models:/..., an mlflow-artifacts: URI or an "
            "object store URI",
        )
    path = unquote(urlsplit(uri).path) if uri.lower().startswith("file:") else uri
    if not os.path.isabs(path):
        raise _refuse(what, uri, f"a local source must be an absolute path inside {local_root}")
    if ".." in path.replace("\\", "/").split("/"):
        raise _refuse(what, uri, "'..' components are not allowed")
    try:
        ensure_within(local_root, path)
    except UnsafePathError:
        raise _refuse(what, uri, "it is outside the server's artifact folder") from None
    return uri


def _local_folder(uri: str) -> str | None:
    """The local folder an artifact destination names, or None for an object store URL."""
    if not _SCHEME.match(uri) or _DRIVE.match(uri):
        return os.path.abspath(uri)
    parts = urlsplit(uri)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        return os.path.abspath(unquote(parts.path))
    return None


def client_source(request: Request, uri: str, what: str = "model version source") -> str:
    """``uri`` as checked for this server's settings (``restrict_client_uris`` off: as is)."""
    settings = request.app.state.settings
    if not settings.restrict_client_uris:
        return uri
    local_root = (
        None if settings.serve_artifacts else _local_folder(request.app.state.artifacts_destination)
    )
    return check_model_source(uri, what, local_root=local_root)

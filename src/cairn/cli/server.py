"""``cairn server``: serve the MLflow-compatible tracking API and artifact proxy with uvicorn.

The app is built once in this process before anything listens: a bad store fails here with a
plain message, and a fresh store gets its schema once instead of being raced by N workers.
Workers are spawned by uvicorn's supervisor on a socket bound here, each rebuilding the app from
the same pickled ``ServerSettings`` (no configuration through environment variables).
"""

from __future__ import annotations

import functools
import os
import signal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import click

from cairn.cli import _serving
from cairn.server.settings import MiB, ServerSettings

if TYPE_CHECKING:
    import socket

    from fastapi import FastAPI

__all__ = ["serve", "server"]

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--backend-store-uri",
    metavar="URI",
    help="Tracking store: a folder, sqlite:///PATH or postgresql://...  "
    "[default: the tracking URI, else ./.cairn]",
)
@click.option(
    "--artifacts-destination",
    metavar="URI",
    help="Where artifacts are kept.  [default: the store's artifacts folder]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (each opens its own connection pool to the store).",
)
@click.option(
    "--no-serve-artifacts",
    is_flag=True,
    help="Do not proxy artifacts: clients read and write the artifacts destination directly.",
)
@click.option(
    "--max-request-mb",
    type=click.IntRange(min=1),
    default=ServerSettings().max_request_bytes // MiB,
    show_default=True,
    help="Largest JSON API request body in MiB; larger ones get 413.",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Require sign-in (HTTP Basic or API token) and check permissions on every route. "
    "The first start creates an admin from CAIRN_ADMIN_USERNAME / CAIRN_ADMIN_PASSWORD, "
    "or asks for one in a terminal.",
)
@click.option(
    "--auth-default-permission",
    type=click.Choice(_PERMISSIONS, case_sensitive=False),
    default="READ",
    show_default=True,
    help="With --auth: what users may do with experiments and models they hold no permission on.",
)
@click.option(
    "--allowed-hosts",
    metavar="NAMES",
    default="",
    help="Comma-separated Host names clients use besides localhost and IP addresses "
    "(*.example.com for subdomains, * for any); other names get 400 (DNS rebinding).  "
    "[default: the --host name; the machine's name when listening on all addresses]",
)
@click.option(
    "--trusted-origins",
    metavar="ORIGINS",
    default="",
    help="Comma-separated origins (https://cairn.example.com) whose pages may write, besides "
    "the server's own: the public origin when a proxy rewrites the Host header.",
)
@click.option("--log-level", type=click.Choice(_LOG_LEVELS), default="warning", show_default=True)
def server(
    host: str,
    port: int,
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    workers: int,
    no_serve_artifacts: bool,
    max_request_mb: int,
    auth: bool,
    auth_default_permission: str,
    allowed_hosts: str,
    trusted_origins: str,
    log_level: str,
) -> None:
    """Serve the MLflow-compatible tracking API and artifact proxy.

    Point MLflow or Cairn clients at the printed URL (MLFLOW_TRACKING_URI / CAIRN_TRACKING_URI).
    """
    settings = ServerSettings(
        backend_store_uri=backend_store_uri or _default_store_uri(),
        artifacts_destination=artifacts_destination,
        serve_artifacts=not no_serve_artifacts,
        max_request_bytes=max_request_mb * MiB,
        auth=auth,
        auth_default_permission=auth_default_permission.upper(),
        allowed_hosts=_serving.allowed_hosts(host, allowed_hosts),
        trusted_origins=_serving.split_names(trusted_origins),
    )
    if auth:
        _first_admin(settings.backend_store_uri)
    serve(settings, host=host, port=port, workers=workers, log_level=log_level)


def serve(
    settings: ServerSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    log_level: str = "warning",
) -> None:
    """Build the app, listen on ``host:port``, print the URL and serve until SIGINT/SIGTERM."""
    import uvicorn

    from cairn.server.app import create_app

    # What the server writes (database, artifacts, temp files) is for its own user only.
    os.umask(0o077)
    app = create_app(settings)
    sock = _serving.listen(host, port)
    config = uvicorn.Config(
        functools.partial(create_app, settings) if workers > 1 else app,
        factory=workers > 1,
        workers=workers,
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
        lifespan="on",
        log_level=log_level,
        backlog=_serving.BACKLOG,
    )
    click.echo(_banner(app, sock, workers))
    if workers > 1:
        # Workers open their own stores; this one only checked the settings and the schema.
        app.state.store.close()
        from uvicorn.config import STARTUP_FAILURE
        from uvicorn.supervisors import Multiprocess

        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
        if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
            raise click.ClickException("A worker failed to start; its error is logged above.")
        return
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal with the
    # handler it found: make that a normal exit (status 0, no traceback), as with workers.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _serving.exit_quietly)
    uvicorn.Server(config).run(sockets=[sock])


def _first_admin(store_uri: str) -> None:
    """Make sure the store has an admin: from the environment, else asked in a terminal."""
    import os
    import sys

    from cairn._config import resolve_store_location
    from cairn.server.auth import ENV_ADMIN_PASSWORD, ENV_ADMIN_USERNAME, ensure_admin
    from cairn.server.auth.stores.sql import AuthStore

    store = AuthStore.open(resolve_store_location(store_uri).uri)
    try:
        username = os.environ.get(ENV_ADMIN_USERNAME, "").strip()
        password = os.environ.get(ENV_ADMIN_PASSWORD, "")
        if store.count_admins() == 0 and not (username and password):
            if not sys.stdin.isatty():
                raise click.ClickException(
                    f"--auth needs an admin and this store has none: set {ENV_ADMIN_USERNAME} "
                    f"and {ENV_ADMIN_PASSWORD}, or start the server in a terminal to be asked"
                )
            click.echo("This store has no admin yet; create one.")
            username = username or click.prompt("Admin username")
            password = click.prompt("Admin password", hide_input=True, confirmation_prompt=True)
        created = ensure_admin(store, username, password)
        if created:
            click.echo(f"Created admin user {created!r}.")
    finally:
        store.close()


def _default_store_uri() -> str:
    """The tracking URI this process would log to, unless it is a server itself."""
    from cairn import _config

    uri = _config.get_tracking_uri()
    if urlsplit(uri).scheme.lower() in ("http", "https"):
        return _config.DEFAULT_HOME
    return uri


def _banner(app: FastAPI, sock: socket.socket, workers: int) -> str:
    from cairn._config import resolve_store_location

    settings: ServerSettings = app.state.settings
    address: Any = sock.getsockname()
    host, port = str(address[0]), int(address[1])
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    store = _hide_password(resolve_store_location(settings.backend_store_uri).uri)
    artifacts = str(app.state.artifacts_destination)
    if not settings.serve_artifacts:
        artifacts += " (not proxied)"
    extra = f", workers: {workers}" if workers > 1 else ""
    if settings.auth:
        extra += f", auth: on (default permission {settings.auth_default_permission})"
    return f"Cairn tracking server on {url} (store: {store}, artifacts: {artifacts}{extra})"


def _hide_password(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))

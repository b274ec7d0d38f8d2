"""``cairn models serve`` and ``cairn models dockerfile``: run a model as a REST service.

``serve`` binds the port first (a port in use fails at once, before seconds of loading), then
fetches the model once, loads and warms it up in each worker, and only then answers: ``/ping``
succeeds as soon as requests are served at full speed. With ``--workers N`` the model is
fetched here once and every worker loads that local copy.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cairn.cli import _serving
from cairn.models.serving.settings import MiB, ScoringSettings

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator, Sequence

    from cairn.models.serving.app import ScoringApp

__all__ = ["dockerfile", "dockerfile_text", "serve"]

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
IMAGE_MODEL_PATH = "/opt/model"
IMAGE_PORT = 8080
BASE_IMAGE = "python:3.11-slim"


@click.command("serve")
@click.option("-m", "--model-uri", required=True, metavar="URI", help="Model to serve.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes, each with its own copy of the model.",
)
@click.option(
    "-t",
    "--timeout",
    type=click.FloatRange(min=0),
    default=ScoringSettings().timeout_seconds,
    show_default=True,
    help="Seconds a request may wait for the model before it gets 504 (0: no limit).",
)
@click.option(
    "--max-request-mb",
    type=click.IntRange(min=1),
    default=ScoringSettings().max_request_bytes // MiB,
    show_default=True,
    help="Largest request body in MiB; larger ones get 413.",
)
@click.option(
    "--no-micro-batching",
    is_flag=True,
    help="Score every request on its own, even when several queue up at once.",
)
@click.option(
    "--allowed-hosts",
    metavar="NAMES",
    default="",
    envvar="CAIRN_ALLOWED_HOSTS",
    help="Comma-separated Host names clients use besides localhost and IP addresses "
    "(*.example.com for subdomains, * for any); other names get 400 (DNS rebinding).  "
    "[default: $CAIRN_ALLOWED_HOSTS, else the --host name; the machine's name when "
    "listening on all addresses]",
)
@click.option("--log-level", type=click.Choice(_LOG_LEVELS), default="warning", show_default=True)
def serve(
    model_uri: str,
    host: str,
    port: int,
    workers: int,
    timeout: float,
    max_request_mb: int,
    no_micro_batching: bool,
    allowed_hosts: str,
    log_level: str,
) -> None:
    """Serve a model over REST: POST /invocations, GET /ping (and POST /learn for river).

    Send JSON with one of dataframe_split, dataframe_records, instances or inputs (and
    optional params), or text/csv; answers are {"predictions": [...]}.
    """
    settings = ScoringSettings(
        max_request_bytes=max_request_mb * MiB,
        timeout_seconds=timeout,
        micro_batching=not no_micro_batching,
    )
    sock = _serving.listen(host, port)
    with _local_model(model_uri) as folder:
        run_scoring_server(
            folder,
            settings,
            sock,
            workers=workers,
            log_level=log_level,
            label=model_uri,
            allowed_hosts=_serving.allowed_hosts(host, allowed_hosts),
        )


def run_scoring_server(
    folder: Path,
    settings: ScoringSettings,
    sock: socket.socket,
    *,
    workers: int = 1,
    log_level: str = "warning",
    label: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Serve the model in ``folder`` on ``sock`` until SIGINT/SIGTERM.

    Requests pass the tracking server's guard first: unknown Host names (DNS rebinding) and
    cross-site writes from browsers (``/learn`` changes an online model) are refused, and every
    answer carries the security headers.
    """
    import uvicorn

    factory = functools.partial(_serving_app, str(folder), settings, tuple(allowed_hosts))
    if workers == 1:
        app = factory()
        routes = "/invocations, /learn" if app.scoring.model.supports_learning else "/invocations"
    else:
        from cairn.models.mlmodel import Model

        metadata = Model.load(folder)  # a bad folder fails here, once, not in every worker
        online = any(conf.get("online") for conf in metadata.flavors.values())
        routes = "/invocations, /learn" if online else "/invocations"
        if online:
            click.echo(
                f"Warning: each of the {workers} workers learns on its own copy of the model; "
                "use one worker to keep a single online model",
                err=True,
            )
    config = uvicorn.Config(
        factory if workers > 1 else app,
        factory=workers > 1,
        workers=workers,
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
        ws="none",  # no websocket routes: skip importing a websocket library at start-up
        lifespan="on",
        log_level=log_level,
        backlog=_serving.BACKLOG,
    )
    click.echo(_banner(sock, label or str(folder), routes, workers))
    if workers > 1:
        from uvicorn.config import STARTUP_FAILURE
        from uvicorn.supervisors import Multiprocess

        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
        if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
            raise click.ClickException("A worker failed to start; its error is logged above.")
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _serving.exit_quietly)
    uvicorn.Server(config).run(sockets=[sock])


class _GuardedApp:
    """The scoring app behind the web guard; ``scoring`` is the app itself."""

    def __init__(self, scoring: ScoringApp, allowed_hosts: tuple[str, ...]) -> None:
        from cairn.server._web_guard import WebGuard

        self.scoring = scoring
        self._guard = WebGuard(scoring, allowed_hosts=allowed_hosts)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._guard(scope, receive, send)


def _serving_app(
    folder: str, settings: ScoringSettings, allowed_hosts: tuple[str, ...] = ()
) -> _GuardedApp:
    """The app of one server process (the factory each worker calls)."""
    import gc

    from cairn.models.serving.app import create_scoring_app

    app = _GuardedApp(create_scoring_app(folder, settings), allowed_hosts)
    # What is loaded now (libraries, the model) lives as long as the process: frozen, it is
    # left out of the collector's full passes, which would walk it in the middle of requests
    # (~70 ms each here). No collection first: that would cost as much at start-up.
    gc.freeze()
    return app


@contextlib.contextmanager
def _local_model(model_uri: str) -> Iterator[Path]:
    """The model's local folder; remote models go to a temporary folder, removed afterwards."""
    from cairn.models.uri import download_model, model_folder, parse_model_uri

    if parse_model_uri(model_uri).kind == "local":
        yield model_folder(download_model(model_uri))
        return
    with tempfile.TemporaryDirectory(prefix="cairn-model-") as tmp:
        yield model_folder(download_model(model_uri, tmp))


def _banner(sock: socket.socket, label: str, routes: str, workers: int) -> str:
    address = sock.getsockname()
    host, port = str(address[0]), int(address[1])
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    extra = f", workers: {workers}" if workers > 1 else ""
    return f"Cairn scoring server for {label} on {url} (POST {routes}, GET /ping{extra})"


# -- dockerfile -------------------------------------------------------------------------------


@click.command("dockerfile")
@click.option("-m", "--model-uri", required=True, metavar="URI", help="Model to package.")
@click.option(
    "-o",
    "--output-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Build context to write (must be empty or new).",
)
def dockerfile(model_uri: str, output_dir: Path) -> None:
    """Write a Docker build context that serves a model on port 8080.

    DIR/model holds a copy of the model, DIR/Dockerfile installs its requirements and Cairn,
    DIR/.dockerignore keeps everything else out. Build it with: docker build -t NAME DIR
    """
    from cairn import __version__
    from cairn.errors import AlreadyExistsError

    target = output_dir.expanduser().absolute()
    if target.exists() and any(target.iterdir()):
        raise AlreadyExistsError(f"{target} is not empty; choose a new or empty folder")
    with _local_model(model_uri) as folder:
        from cairn.models.mlmodel import Model

        Model.load(folder)  # only model folders are packaged
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder, target / "model", ignore=shutil.ignore_patterns("__pycache__"))
    has_requirements = (target / "model" / "requirements.txt").is_file()
    (target / "Dockerfile").write_text(dockerfile_text(__version__, has_requirements))
    (target / ".dockerignore").write_text(_DOCKERIGNORE)
    click.echo(f"Wrote {target / 'Dockerfile'}; build it with: docker build -t NAME {target}")


def dockerfile_text(cairn_version: str, has_requirements: bool = True) -> str:
    """The Dockerfile of a context whose ``model/`` folder holds the model."""
    requirements = f"-r {IMAGE_MODEL_PATH}/requirements.txt " if has_requirements else ""
    copy_requirements = (
        f"COPY model/requirements.txt {IMAGE_MODEL_PATH}/requirements.txt\n"
        if has_requirements
        else ""
    )
    command = [
        "cairn",
        "models",
        "serve",
        "-m",
        IMAGE_MODEL_PATH,
        "--host",
        "0.0.0.0",
        "--port",
        str(IMAGE_PORT),
    ]
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{IMAGE_PORT}/ping')"
    quoted = ", ".join(f'"{part}"' for part in command)
    return (
        "# Serves the model in model/ with Cairn's scoring server.\n"
        "#   docker build -t my-model .\n"
        f"#   docker run -p {IMAGE_PORT}:{IMAGE_PORT} my-model\n"
        f"FROM {BASE_IMAGE}\n"
        "ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1\n"
        # Requirements first: the install layer is reused while only the model changes.
        f"{copy_requirements}"
        f'RUN pip install {requirements}"cairn-ml[server]=={cairn_version}"\n'
        f"COPY model {IMAGE_MODEL_PATH}\n"
        f"EXPOSE {IMAGE_PORT}\n"
        f'HEALTHCHECK --start-period=30s CMD ["python", "-c", "{probe}"]\n'
        f"CMD [{quoted}]\n"
    )


_DOCKERIGNORE = """\
# The image needs the model folder only.
*
!model/
**/__pycache__
**/*.pyc
"""

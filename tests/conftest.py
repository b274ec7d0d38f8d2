"""Session-wide test fixtures: a real throwaway PostgreSQL server and per-test isolation.

Fixtures
--------
postgres_server  (session)  base URI of a PostgreSQL server,
                            ``postgresql://postgres@127.0.0.1:PORT/postgres``: the value of
                            ``$CAIRN_TEST_POSTGRES_URI`` if set, else a throwaway server started
                            from ``/usr/lib/postgresql/*/bin`` and removed at session end.
postgres_uri     (function) a fresh, empty database on that server; dropped after the test.
sqlite_uri       (function) ``sqlite:///<tmp_path>/cairn.db``.
spark            (session)  a local[2] SparkSession (Arrow on, UI off); mark its tests slow.
cairn_server     (function) a factory: ``cairn_server(store_uri, *args)`` starts a real
                            ``cairn server --port 0`` subprocess on 127.0.0.1 (own session,
                            cwd ``tmp_path``) and returns it once ``/health`` answers; killed
                            (SIGKILL, whole group) at teardown, or earlier by ``.kill()``.
(autouse)                   ``$CAIRN_TRACKING_URI`` points into ``tmp_path``, never the repo.

Tests using ``postgres_server``/``postgres_uri`` get the ``postgres`` marker automatically,
so ``-m "not postgres"`` deselects them. ``CAIRN_TEST_SKIP_POSTGRES=1`` skips them instead of
failing when no PostgreSQL server binaries are installed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ENV_EXTERNAL_URI = "CAIRN_TEST_POSTGRES_URI"
ENV_SKIP_POSTGRES = "CAIRN_TEST_SKIP_POSTGRES"
POSTGRES_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 30
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_connections": "200",
}


# -- per-test isolation ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated_cairn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point Cairn's default tracking store into the test's tmp dir, never into the repo.

    Afterwards, drop the process-wide state a test may have left: the explicit tracking URI,
    the fluent API's active runs, experiment and logger, and cached stores.
    """
    monkeypatch.setenv("CAIRN_TRACKING_URI", str(tmp_path / "cairn-home"))
    yield
    from cairn import _config
    from cairn.tracking import fluent
    from cairn.tracking.stores import clear_store_cache

    for stack in fluent._all_stacks:
        stack.clear()
    fluent._experiment_id = None
    if fluent._logger is not None:
        fluent._logger._errors.clear()
        fluent._logger._pending.clear()
    fluent._logger = None
    fluent._client = None
    _config.set_tracking_uri(None)
    clear_store_cache()


@pytest.fixture(autouse=True)
def _test_client_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers answer ``Host: testserver`` (Starlette's TestClient), as Django's test runner
    allows it; tests/server/test_web_protections.py checks real names still need allowing."""
    from cairn.server import _web_guard

    monkeypatch.setattr(_web_guard, "EXTRA_NAMES", frozenset({"testserver"}))


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    """A SQLite store URI in the test's tmp dir (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'cairn.db'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


# -- PostgreSQL -----------------------------------------------------------------------------


def _find_postgres_bin() -> Path | None:
    """The ``bin`` folder of the highest installed PostgreSQL version, if any."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))

    candidates = [
        p.parent for p in POSTGRES_ROOT.glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()
    ]
    return max(candidates, key=lambda b: version(b / "initdb")) if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _with_dbname(uri: str, dbname: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(path=f"/{dbname}"))


class _LocalPostgres:
    """A PostgreSQL cluster in a temp dir; run as ``postgres`` via runuser when we are root.

    The postmaster runs in the foreground as our own child process (not daemonized through
    ``pg_ctl start``), so we reap it ourselves and leave no orphan behind.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="cairn-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        if self.as_root:
            shutil.chown(self.root, user="postgres", group="postgres")

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / tool), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else cmd

    def start(self) -> None:
        initdb_args = ["--username=postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"]
        init = subprocess.run(
            self._command("initdb", f"--pgdata={self.data}", *initdb_args, "--no-sync"),
            cwd=self.root,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}{init.stderr}")
        settings = {**SERVER_SETTINGS, "port": str(self.port)}
        settings["unix_socket_directories"] = f"'{self.root}'"
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# cairn test session\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self._command("postgres", "-D", str(self.data)),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_accepting(self.process)

    def _wait_until_accepting(self, process: subprocess.Popen[bytes]) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited during start-up (code {process.returncode})\n"
                    f"--- server log ({self.log}) ---\n{_log_tail(self.log)}"
                )
            try:
                with psycopg.connect(self.uri, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL on port {self.port} not accepting connections after "
                        f"{START_TIMEOUT_S} s: {exc}\n"
                        f"--- server log ({self.log}) ---\n{_log_tail(self.log)}"
                    ) from exc
                time.sleep(0.05)

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                subprocess.run(
                    self._command("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate"),
                    cwd=self.root,
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                )
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Base URI of a PostgreSQL server for this test session (database ``postgres``)."""
    external = os.environ.get(ENV_EXTERNAL_URI)
    if external:
        yield external
        return
    bindir = _find_postgres_bin()
    if bindir is None:
        message = (
            f"PostgreSQL server binaries not found under {POSTGRES_ROOT}/*/bin: install Debian's "
            f"postgresql package or run scripts/test.sh (or set {ENV_EXTERNAL_URI})"
        )
        if os.environ.get(ENV_SKIP_POSTGRES) == "1":
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    server = _LocalPostgres(bindir)
    try:
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def postgres_uri(postgres_server: str) -> Iterator[str]:
    """A fresh, uniquely named, empty database on the session server; dropped afterwards."""
    import psycopg
    from psycopg import sql

    dbname = f"cairn_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
        if conn.info.server_version >= 150000:  # ~5x faster than WAL_LOG here (fsync is off)
            create += sql.SQL(" STRATEGY FILE_COPY")
        conn.execute(create)
    try:
        yield _with_dbname(postgres_server, dbname)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@dataclass
class LiveServer:
    """A Cairn tracking server on 127.0.0.1 in a background thread."""

    url: str
    settings: Any
    app: Any


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real tracking server (uvicorn, real socket) on a free port, stopped afterwards."""
    import threading

    import uvicorn

    from cairn.server import ServerSettings, create_app

    settings = ServerSettings(backend_store_uri=str(tmp_path / "server-store"))
    app = create_app(settings)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="cairn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("tracking server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class ServerProcess:
    """A ``cairn server`` subprocess; ``url`` comes from the banner it prints."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        import queue
        import threading

        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))}
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # one process group, workers included
        )
        self.pid = self.proc.pid
        self.output: list[str] = []
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"cairn server did not start: {''.join(self.output)}") from None
            found = re.match(r"Cairn tracking server on (http://127\.0\.0\.1:\d+) ", line)
            if found:
                self.url = found.group(1)
                break
        self._wait_healthy(deadline)

    def _wait_healthy(self, deadline: float) -> None:
        import httpx

        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"cairn server did not answer /health: {''.join(self.output)}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown handlers, no final checkpoint."""
        import contextlib
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)


@pytest.fixture
def cairn_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real ``cairn server`` processes; every one still running is killed afterwards."""
    script = Path(sys.executable).with_name("cairn")
    base = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "import cairn.cli as c; c.main()"]
    )
    started: list[ServerProcess] = []

    def start(store_uri: str, *args: str) -> ServerProcess:
        command = [*base, "server", "--host", "127.0.0.1", "--port", "0"]
        command += ["--backend-store-uri", store_uri]
        command += ["--artifacts-destination", str(tmp_path / "artifacts"), *args]
        started.append(ServerProcess(command, tmp_path))
        return started[-1]

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.kill()


# -- Spark ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session for the whole run: the JVM takes ~10 s to start."""
    from pyspark.sql import SparkSession

    python = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # Python workers import this venv's cairn
    session = (
        SparkSession.builder.master("local[2]")
        .appName("cairn-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        if python is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = python

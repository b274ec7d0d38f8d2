"""``cairn server`` as users start it: a real subprocess on 127.0.0.1, stopped by a signal."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx
import pytest
from click.testing import CliRunner

from cairn.cli import cli

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cairn.server.settings import ServerSettings

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
# The 2 s target is measured by bench/server.py (1.0 s); this bound only catches a regression
# towards the incumbent's ~10-20 s without failing on a busy machine that compiles from source.
HEALTH_BUDGET_S = 5.0
_SCRIPT = Path(sys.executable).with_name("cairn")
CAIRN = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "import cairn.cli as c; c.main()"]
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A ``cairn server`` subprocess in its own session; its stdout lines arrive on a queue."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))}
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [*CAIRN, "server", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # one process group: workers included, killed together
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=self._pump, args=(stdout,), daemon=True).start()

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.lines.put(line)

    def banner(self) -> str:
        try:
            return self.lines.get(timeout=START_TIMEOUT_S).rstrip("\n")
        except queue.Empty:
            raise AssertionError(f"no banner within {START_TIMEOUT_S} s: {self.stderr()}") from None

    def wait_healthy(self, url: str) -> float:
        """Seconds from ``Popen`` to the first 200 OK from ``/health``."""
        deadline = self.started_at + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.stderr()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    return time.perf_counter() - self.started_at
            time.sleep(0.01)
        raise AssertionError(f"/health did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def _server(args: list[str], cwd: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(args, cwd)
    try:
        yield server
    finally:
        server.kill()


def _url(banner: str) -> str:
    match = re.match(r"Cairn tracking server on (http://127\.0\.0\.1:\d+) ", banner)
    assert match is not None, banner
    return match.group(1)


def _assert_port_free(port: int) -> None:
    with pytest.raises(httpx.ConnectError, match=r"(?i)refused|connect"):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # as any server (this one included) would


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.append(int(entry.name))
    return found


def test_serves_health_fast_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    store = tmp_path / "store"
    with _server(["--port", str(port), "--backend-store-uri", str(store)], tmp_path) as server:
        banner = server.banner()
        assert banner == (
            f"Cairn tracking server on http://127.0.0.1:{port} "
            f"(store: sqlite:///{store / 'cairn.db'}, artifacts: {store / 'artifacts'})"
        )
        seconds = server.wait_healthy(_url(banner))
        print(f"\ncairn server: first 200 OK from /health {seconds:.3f} s after Popen")
        assert seconds < HEALTH_BUDGET_S

        with httpx.Client(base_url=_url(banner), timeout=10) as client:
            created = client.post("/api/2.0/mlflow/experiments/create", json={"name": "cli"})
            assert created.status_code == 200, created.text
            found = client.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=cli")
            assert found.json()["experiment"]["artifact_location"].startswith("mlflow-artifacts:")
            # An idle keep-alive connection must not hold up the shutdown.
            started = time.perf_counter()
            assert server.stop() == 0, server.stderr()
            assert time.perf_counter() - started < 5
        assert "Traceback" not in server.stderr()
        _assert_port_free(port)
    assert (store / "cairn.db").exists()


def test_workers_share_one_socket_and_stop_together(tmp_path: Path) -> None:
    args = ["--port", "0", "--workers", "2", "--backend-store-uri", str(tmp_path / "store")]
    with _server(args, tmp_path) as server:
        banner = server.banner()
        assert banner.endswith(", workers: 2)"), banner
        url = _url(banner)
        seconds = server.wait_healthy(url)
        print(f"\ncairn server --workers 2: first 200 OK from /health {seconds:.3f} s after Popen")
        names = [f"exp-{i}" for i in range(6)]
        for name in names:  # a new connection each: the kernel spreads them over the workers
            response = httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": name})
            assert response.status_code == 200, response.text
        for name in names:
            response = httpx.get(
                f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name}
            )
            assert response.json()["experiment"]["name"] == name
        workers = _children(server.proc.pid) if sys.platform == "linux" else []
        if sys.platform == "linux":
            assert len(workers) >= 2, workers
        assert server.stop() == 0, server.stderr()
        assert "Traceback" not in server.stderr()
        port = int(url.rsplit(":", 1)[1])
        _assert_port_free(port)
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid), pid


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with _server(
            ["--port", str(port), "--backend-store-uri", str(tmp_path / "s")], tmp_path
        ) as server:
            code = server.proc.wait(timeout=START_TIMEOUT_S)
            assert code == 1
            assert f"Error: Cannot listen on 127.0.0.1:{port}" in server.stderr()


def test_help_does_not_import_the_server_stack() -> None:
    code = (
        "import sys\n"
        "from cairn.cli import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='cairn')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('uvicorn', 'fastapi', 'sqlalchemy') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "server  " in out and "Serve the MLflow-compatible tracking API." in out
    assert out.rstrip().endswith("[]"), out


# -- option handling, without serving -----------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ServerSettings, dict[str, object]]]:
    """Calls ``cairn server`` would have made to ``serve``."""
    from cairn.cli import server as server_module

    calls: list[tuple[ServerSettings, dict[str, object]]] = []
    monkeypatch.setattr(
        server_module, "serve", lambda settings, **kwargs: calls.append((settings, kwargs))
    )
    return calls


def test_options_become_settings(
    served: list[tuple[ServerSettings, dict[str, object]]], tmp_path: Path
) -> None:
    args = [
        "server",
        "--host", "127.0.0.2",
        "--port", "6000",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'x.db'}",
        "--artifacts-destination", str(tmp_path / "arts"),
        "--workers", "3",
        "--no-serve-artifacts",
        "--max-request-mb", "2",
        "--log-level", "info",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [(settings, kwargs)] = served
    assert settings.backend_store_uri == f"sqlite:///{tmp_path / 'x.db'}"
    assert settings.artifacts_destination == str(tmp_path / "arts")
    assert settings.serve_artifacts is False
    assert settings.max_request_bytes == 2 * 1024 * 1024
    assert kwargs == {"host": "127.0.0.2", "port": 6000, "workers": 3, "log_level": "info"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, ".cairn"),
        ("{tmp}/from-env", "{tmp}/from-env"),
        ("http://127.0.0.1:5000", ".cairn"),  # a server does not log to another server
    ],
)
def test_default_store_is_the_tracking_uri(
    served: list[tuple[ServerSettings, dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: str | None,
    expected: str,
) -> None:
    if env is None:
        monkeypatch.delenv("CAIRN_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("CAIRN_TRACKING_URI", env.format(tmp=tmp_path))
    result = CliRunner().invoke(cli, ["server"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [(settings, kwargs)] = served
    assert settings.backend_store_uri == expected.format(tmp=tmp_path)
    assert settings.serve_artifacts is True
    assert kwargs == {"host": "127.0.0.1", "port": 5000, "workers": 1, "log_level": "warning"}


def test_unusable_store_fails_before_listening(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["server", "--port", "0", "--backend-store-uri", "http://127.0.0.1:1"]
    )
    assert result.exit_code == 1
    assert "Error: --backend-store-uri must be a folder" in result.output

"""``cairn models serve`` as users start it (a real subprocess), and ``cairn models dockerfile``.

No Docker engine is needed: the generated Dockerfile is parsed, and the command it would run
in the image is run here against the copied model.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from river import linear_model
from sklearn.linear_model import LogisticRegression

import cairn
import cairn.pyfunc
import cairn.river
import cairn.sklearn
from cairn import __version__
from cairn.cli import cli

if TYPE_CHECKING:
    from collections.abc import Iterator

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_SCRIPT = Path(sys.executable).with_name("cairn")
CAIRN = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "import cairn.cli as c; c.main()"]
)
COLUMNS = ["x1", "x2", "x3"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """A ``cairn ...`` subprocess in its own session; its stdout lines arrive on a queue."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "MLFLOW_"))}
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.lines.put(line)

    def banner(self) -> str:
        try:
            return self.lines.get(timeout=START_TIMEOUT_S).rstrip("\n")
        except queue.Empty:
            raise AssertionError(f"no banner within {START_TIMEOUT_S} s: {self.stderr()}") from None

    def url(self) -> str:
        match = re.search(r" on (http://127\.0\.0\.1:\d+) ", self.banner())
        assert match is not None
        return match.group(1)

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.stderr()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ping", timeout=5.0).status_code == 200:
                    return
            time.sleep(0.02)
        raise AssertionError(f"/ping did not answer within {START_TIMEOUT_S} s")

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
def _running(argv: list[str], cwd: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(argv, cwd)
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(rng.normal(size=(60, 3)), columns=COLUMNS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("serve-cli") / "model"
    model = LogisticRegression().fit(frame, (frame["x1"] > frame["x3"]).astype(int))
    cairn.sklearn.save_model(model, path, input_example=frame[:2])
    return path


def _split(frame: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}


def _expected(model_dir: Path, frame: pd.DataFrame) -> list[int]:
    return [int(v) for v in cairn.pyfunc.load_model(model_dir).predict(frame)]


def test_serve_refuses_rebound_hosts_and_cross_site_writes(
    tmp_path: Path, model_dir: Path, frame: pd.DataFrame
) -> None:
    port = _free_port()
    argv = [*CAIRN, "models", "serve", "-m", str(model_dir), "--port", str(port)]
    argv += ["--allowed-hosts", "scoring.internal"]
    with _running(argv, tmp_path) as server:
        url = f"http://127.0.0.1:{port}"
        server.wait_ready(url)
        with httpx.Client(base_url=url, timeout=30) as client:
            scored = client.post("/invocations", json=_split(frame))
            assert scored.status_code == 200, scored.text
            assert scored.headers["x-content-type-options"] == "nosniff"
            named = client.post(
                "/invocations", json=_split(frame), headers={"Host": f"scoring.internal:{port}"}
            )
            assert named.status_code == 200, named.text
            rebound = client.get("/ping", headers={"Host": f"attacker.example:{port}"})
            assert rebound.status_code == 400
            assert "attacker.example" in rebound.json()["message"]
            cross_site = client.post(
                "/invocations", json=_split(frame), headers={"Origin": "http://attacker.example"}
            )
            assert cross_site.status_code == 403
            assert "origin" in cross_site.json()["message"]


def test_serve_scores_like_the_model_and_survives_bad_payloads(
    tmp_path: Path, model_dir: Path, frame: pd.DataFrame
) -> None:
    port = _free_port()
    argv = [*CAIRN, "models", "serve", "-m", str(model_dir), "--port", str(port)]
    with _running(argv, tmp_path) as server:
        url = f"http://127.0.0.1:{port}"
        assert server.banner() == (
            f"Cairn scoring server for {model_dir} on {url} (POST /invocations, GET /ping)"
        )
        server.wait_ready(url)
        with httpx.Client(base_url=url, timeout=30) as client:
            response = client.post("/invocations", json=_split(frame))
            assert response.status_code == 200, response.text
            assert response.json() == {"predictions": _expected(model_dir, frame)}
            bad = client.post(
                "/invocations",
                content=b'{"dataframe_split": ',
                headers={"content-type": "application/json"},
            )
            assert bad.status_code == 400
            assert bad.json()["error_code"] == "BAD_REQUEST"
            again = client.post(
                "/invocations", json={"dataframe_records": frame[:1].to_dict("records")}
            )
            assert again.status_code == 200
            assert again.json()["predictions"] == _expected(model_dir, frame)[:1]
            assert client.get("/version").text == __version__
        assert server.stop() == 0, server.stderr()
        assert "Traceback" not in server.stderr()


def test_workers_each_load_the_model(tmp_path: Path, frame: pd.DataFrame) -> None:
    online = linear_model.LinearRegression()
    for row, target in zip(frame.to_dict("records"), frame["x1"] * 3, strict=True):
        online.learn_one(row, target)
    cairn.river.save_model(online, tmp_path / "online", input_example=frame[:2])
    argv = [*CAIRN, "models", "serve", "-m", str(tmp_path / "online"), "--port", "0"]
    with _running([*argv, "--workers", "2"], tmp_path) as server:
        banner = server.banner()
        assert "(POST /invocations, /learn, GET /ping, workers: 2)" in banner
        url = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert url is not None
        server.wait_ready(url.group())
        expected = cairn.pyfunc.load_model(tmp_path / "online").predict(frame).tolist()
        for _ in range(6):  # a new connection each: the kernel spreads them over the workers
            response = httpx.post(f"{url.group()}/invocations", json=_split(frame), timeout=30)
            assert response.json() == {"predictions": expected}
        assert server.stop() == 0, server.stderr()
        stderr = server.stderr()
        assert "Traceback" not in stderr
        assert "each of the 2 workers learns on its own copy of the model" in stderr


def test_port_in_use_fails_before_loading(tmp_path: Path, model_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [*CAIRN, "models", "serve", "-m", str(model_dir), "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    assert proc.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_serve_refuses_a_missing_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["models", "serve", "-m", str(tmp_path / "nothing"), "--port", "0"]
    )
    assert result.exit_code == 1
    assert "no model at" in result.output


# -- dockerfile -------------------------------------------------------------------------------


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction; comments dropped, continuations joined."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    parsed = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            parsed.append((keyword.upper(), rest.strip()))
    return parsed


def test_dockerfile_context_serves_the_model(
    tmp_path: Path, model_dir: Path, frame: pd.DataFrame
) -> None:
    with cairn.start_run() as run:
        cairn.log_artifacts(str(model_dir), "model")
    out = tmp_path / "context"
    result = CliRunner().invoke(
        cli, ["models", "dockerfile", "-m", f"runs:/{run.info.run_id}/model", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "docker build" in result.output
    assert sorted(p.name for p in out.iterdir()) == [".dockerignore", "Dockerfile", "model"]
    assert (out / "model" / "MLmodel").read_text() == (model_dir / "MLmodel").read_text()

    steps = _instructions((out / "Dockerfile").read_text())
    keywords = [keyword for keyword, _ in steps]
    assert keywords[0] == "FROM"
    assert steps[0][1] == "python:3.11-slim"
    assert keywords.index("COPY") < keywords.index("RUN") < keywords.index("CMD")
    copies = [args.split() for keyword, args in steps if keyword == "COPY"]
    assert ["model", "/opt/model"] in copies
    assert ["model/requirements.txt", "/opt/model/requirements.txt"] in copies
    install = shlex.split(next(args for keyword, args in steps if keyword == "RUN"))
    assert install[:4] == ["pip", "install", "-r", "/opt/model/requirements.txt"]
    assert f"cairn-ml[server]=={__version__}" in install
    assert ("EXPOSE", "8080") in steps
    command = json.loads(next(args for keyword, args in steps if keyword == "CMD"))
    assert command == [
        "cairn",
        "models",
        "serve",
        "-m",
        "/opt/model",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    ignore = (out / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1] == "!model/"

    # The image's command, run here against the copied model on a free port.
    port = _free_port()
    local = [*CAIRN, *command[1:]]
    local[local.index("/opt/model")] = str(out / "model")
    local[local.index("0.0.0.0")] = "127.0.0.1"
    local[local.index("8080")] = str(port)
    with _running(local, tmp_path) as server:
        url = f"http://127.0.0.1:{port}"
        server.wait_ready(url)
        response = httpx.post(f"{url}/invocations", json=_split(frame), timeout=30)
        assert response.json() == {"predictions": _expected(model_dir, frame)}


def test_dockerfile_refuses_a_non_empty_folder(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        cli, ["models", "dockerfile", "-m", str(model_dir), "-o", str(tmp_path / "busy")]
    )
    assert result.exit_code == 1
    assert "is not empty" in result.output
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["keep.txt"]

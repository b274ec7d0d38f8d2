"""Cairn's scoring server vs ``mlflow models serve``: one scikit-learn model, side by side.

    .venv/bin/python bench/models_serve.py            # full sizes
    .venv/bin/python bench/models_serve.py --quick    # shorter runs, fewer repeats
    .venv/bin/python bench/models_serve.py --json results.json

A logistic regression on 10 numeric features is saved once (``cairn.sklearn.save_model``, the
layout MLflow reads) and served by ``cairn models serve`` and by ``mlflow models serve
--env-manager local``, each a subprocess on a free 127.0.0.1 port with its default settings
(one worker each), started in a clean environment as ``bench/server.py`` does. This process
drives both with the same requests from a small asyncio HTTP/1.1 client on keep-alive
connections: a few dozen microseconds per request, so it is not what limits the figures (the
notes show the rate it reaches against the trivial ``/ping``). Start-ups alternate between the
tools; for the load figures both servers run at once and are driven in alternating rounds, so
that a busy moment on a shared machine falls on both.

``run(quick)`` returns one dict per scenario (the shape of ``bench/server.py``'s JSON
entries, names prefixed ``serve_``); ``bench/models.py`` collects them. Run as a script,
this module prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py, beside this script

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

TOOLS = _harness.TOOLS
BIN = Path(sys.executable).parent
FEATURES = 10
TRAIN_ROWS = 2_000
BIG_ROWS = 10_000
CLIENTS = 8
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
# "As fast as later ones": within 2x a later request that also follows an idle moment (a
# request after idling waits for the OS to wake the server, ~1 ms here, which is not start-up).
FIRST_REQUEST_SLACK = 2.0
IDLE_PROBES = 3
IDLE_PAUSE_S = 0.5
TOOL_ENV_PREFIXES = ("CAIRN_", "MLFLOW_")
DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


class BenchError(Exception):
    """A measurement could not be taken (a server did not start, answers were wrong)."""


# -- the model and the requests ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """The model folder both servers load, and the request bodies both are sent."""

    model_dir: Path
    columns: list[str]
    rows: list[list[float]]  # single-row requests cycle through these
    expected_rows: list[int]
    big_body: bytes
    expected_big: list[int]

    def single(self, index: int) -> bytes:
        row = self.rows[index % len(self.rows)]
        return json.dumps({"dataframe_split": {"columns": self.columns, "data": [row]}}).encode()


def build_workload(folder: Path) -> Workload:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import cairn.sklearn

    rng = np.random.default_rng(20240611)
    columns = [f"f{i}" for i in range(FEATURES)]
    train = pd.DataFrame(rng.normal(size=(TRAIN_ROWS, FEATURES)), columns=columns)
    labels = (train.to_numpy() @ rng.normal(size=FEATURES) > 0).astype(int)
    model = LogisticRegression().fit(train, labels)
    model_dir = folder / "model"
    cairn.sklearn.save_model(model, model_dir, input_example=train[:5])
    singles = pd.DataFrame(rng.normal(size=(256, FEATURES)), columns=columns)
    big = pd.DataFrame(rng.normal(size=(BIG_ROWS, FEATURES)), columns=columns)
    big_body = json.dumps(
        {"dataframe_split": {"columns": columns, "data": big.to_numpy().tolist()}}
    ).encode()
    return Workload(
        model_dir,
        columns,
        singles.to_numpy().tolist(),
        [int(v) for v in model.predict(singles)],
        big_body,
        [int(v) for v in model.predict(big)],
    )


def floor_task(workload: Workload) -> Callable[[], float]:
    """The 10k-row request's work in this process (decode, build the table, predict), timed.

    The table is built the fastest way we know (one ``numpy.fromiter`` over the rows); the
    servers must also check the values and write the answer. Samples are taken between the
    servers' 10k-row requests, so both see the same machine load.
    """
    import itertools

    import numpy as np
    import orjson
    import pandas as pd

    import cairn.pyfunc

    model = cairn.pyfunc.load_model(workload.model_dir)

    def once() -> Any:
        split = orjson.loads(workload.big_body)["dataframe_split"]
        rows = split["data"]
        flat = np.fromiter(itertools.chain.from_iterable(rows), np.float64, len(rows) * FEATURES)
        frame = pd.DataFrame(flat.reshape(len(rows), FEATURES), columns=split["columns"])
        return model.predict(frame)

    if [int(v) for v in once()] != workload.expected_big:
        raise BenchError("in-process predictions differ from the model's")

    def timed() -> float:
        start = time.perf_counter()
        once()
        return time.perf_counter() - start

    return timed


# -- a small HTTP/1.1 client ------------------------------------------------------------------


class Connection:
    """One keep-alive connection that sends prepared requests and reads whole responses."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            raise BenchError(f"response without Content-Length: {head[:200]!r}")
        length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
        body = await self.reader.readexactly(length)
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def http_request(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def closed_loop(port: int, requests: Sequence[bytes], seconds: float) -> dict[str, Any]:
    """CLIENTS connections, each sending the next request as soon as its answer is read."""
    connections = [Connection(port) for _ in range(CLIENTS)]
    for connection in connections:
        await connection.request(requests[0])  # connected and warm before the clock starts
    start = time.perf_counter()
    deadline = start + seconds

    async def client(offset: int) -> tuple[int, int, str]:
        done = errors = 0
        first_error = ""
        index = offset
        connection = connections[offset]
        while time.perf_counter() < deadline:
            status, body = await connection.request(requests[index % len(requests)])
            index += CLIENTS
            if status == 200:
                done += 1
            else:
                errors += 1
                first_error = first_error or f"{status}: {body[:200]!r}"
        return done, errors, first_error

    outcomes = await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    elapsed = time.perf_counter() - start
    for connection in connections:
        connection.close()
    done = sum(o[0] for o in outcomes)
    return {
        "rate": done / elapsed,
        "requests": done,
        "errors": sum(o[1] for o in outcomes),
        "seconds": elapsed,
        "first_error": next((o[2] for o in outcomes if o[2]), ""),
    }


async def sequential(port: int, requests: Sequence[bytes]) -> tuple[list[float], list[bytes]]:
    """Per-request seconds of ``requests`` sent one after another on one connection."""
    connection = Connection(port)
    await connection.connect()  # not timed: the first request is timed like the others
    latencies, bodies = [], []
    for raw in requests:
        start = time.perf_counter()
        status, body = await connection.request(raw)
        latencies.append(time.perf_counter() - start)
        if status != 200:
            raise BenchError(f"request failed with {status}: {body[:300]!r}")
        bodies.append(body)
    connection.close()
    return latencies, bodies


async def alternating(
    port: int, raw: bytes, floor: Callable[[], float], repeats: int
) -> tuple[list[float], list[float], bytes]:
    """``repeats`` x (one floor sample, then one request on a keep-alive connection)."""
    connection = Connection(port)
    await connection.connect()
    status, body = await connection.request(raw)  # untimed: the first large body
    floors, latencies = [], []
    for _ in range(repeats):
        floors.append(floor())
        start = time.perf_counter()
        status, body = await connection.request(raw)
        latencies.append(time.perf_counter() - start)
        if status != 200:
            raise BenchError(f"request failed with {status}: {body[:300]!r}")
    connection.close()
    return latencies, floors, body


async def after_idle(port: int, ping: bytes, requests: Sequence[bytes]) -> list[float]:
    """Seconds of each request sent after IDLE_PAUSE_S of silence (client warmed by a /ping)."""
    connection = Connection(port)
    await connection.request(ping)
    latencies = []
    for raw in requests:
        await asyncio.sleep(IDLE_PAUSE_S)
        start = time.perf_counter()
        status, body = await connection.request(raw)
        latencies.append(time.perf_counter() - start)
        if status != 200:
            raise BenchError(f"request failed with {status}: {body[:300]!r}")
    connection.close()
    return latencies


def percentile(seconds: Sequence[float], q: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the servers ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool_env(pycache: Path) -> dict[str, str]:
    """Default settings for both tools: their variables dropped, bytecode cached per run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(TOOL_ENV_PREFIXES) and k not in DROPPED_ENV
    }
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    # As in an activated venv: ``mlflow models serve`` runs ``uvicorn`` through the shell.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


class ScoringServer:
    """``cairn models serve`` or ``mlflow models serve``: a subprocess in its own session."""

    def __init__(self, tool: str, model_dir: Path, env: dict[str, str], cwd: Path) -> None:
        self.tool = tool
        self.port = _free_port()
        common = ["-m", str(model_dir), "--host", "127.0.0.1", "--port", str(self.port)]
        if tool == "cairn":
            command = [str(BIN / "cairn"), "models", "serve", *common]
        else:
            command = [str(BIN / "mlflow"), "models", "serve", *common, "--env-manager", "local"]
        self.log_path = cwd / f"{tool}-serve-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> float:
        """Seconds from ``Popen`` to the first 200 from ``/ping`` (polled every 10 ms)."""
        import httpx

        deadline = self.started_at + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.tool} exited {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                response = httpx.get(f"http://127.0.0.1:{self.port}/ping", timeout=30.0)
                if response.status_code == 200:
                    return time.perf_counter() - self.started_at
            time.sleep(0.01)
        raise BenchError(f"{self.tool}: no /ping after {START_TIMEOUT_S} s")

    def settle(self, quiet_cpu: float = 0.1, window: float = 0.5) -> None:
        """Wait until the server's processes are idle (Linux; elsewhere 2 s)."""
        if not Path("/proc").is_dir():
            time.sleep(2)
            return
        quiet, before, start = 0, _group_cpu_seconds(self.proc.pid), time.perf_counter()
        while quiet < 2 and time.perf_counter() - start < 60:
            time.sleep(window)
            now = _group_cpu_seconds(self.proc.pid)
            quiet = quiet + 1 if now - before < quiet_cpu * window else 0
            before = now

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):  # uvicorn children of mlflow
            os.killpg(self.proc.pid, signal.SIGKILL)


def _group_cpu_seconds(pgid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@contextlib.contextmanager
def serving(tool: str, workload: Workload, env: dict[str, str], cwd: Path) -> Iterator[Any]:
    server = ScoringServer(tool, workload.model_dir, env, cwd)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _predictions(body: bytes) -> list[int]:
    return [int(v) for v in json.loads(body)["predictions"]]


# -- scenarios --------------------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """What one tool's server measured."""

    startup: list[float] = field(default_factory=list)
    first_request: list[float] = field(default_factory=list)
    later_median: list[float] = field(default_factory=list)
    after_idle: list[float] = field(default_factory=list)
    ping: dict[str, Any] = field(default_factory=dict)
    throughput: dict[str, Any] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    big: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)


def measure_startups(
    tool: str, workload: Workload, env: dict[str, str], cwd: Path, figures: Figures
) -> None:
    """Start-up to /ping; the first request, the median of the next 50, and requests that
    each follow a pause of IDLE_PAUSE_S.

    A /ping on the same connection goes first, untimed, so that the first /invocations finds
    this client's code warm: what is left is the server's first-request cost.
    """
    server = ScoringServer(tool, workload.model_dir, env, cwd)
    try:
        figures.startup.append(server.wait_ready())
        requests = [
            http_request(server.port, "POST", "/invocations", workload.single(i)) for i in range(51)
        ]
        ping = http_request(server.port, "GET", "/ping")
        latencies, bodies = _run(sequential(server.port, [ping, *requests]))
        latencies, bodies = latencies[1:], bodies[1:]
        figures.after_idle += _run(after_idle(server.port, ping, requests[:IDLE_PROBES]))
    finally:
        server.stop()
    if [_predictions(body)[0] for body in bodies] != workload.expected_rows[:51]:
        raise BenchError(f"{tool}: single-row predictions differ from the model's")
    figures.first_request.append(latencies[0])
    figures.later_median.append(statistics.median(latencies[1:]))


def _order(round_: int) -> tuple[str, ...]:
    """Alternate which tool goes first, so drift in machine load hits both alike."""
    return TOOLS if round_ % 2 == 0 else TOOLS[::-1]


async def big_requests(
    ports: dict[str, int], raws: dict[str, bytes], floor: Callable[[], float], repeats: int
) -> tuple[dict[str, list[float]], list[float], dict[str, bytes]]:
    """Large requests to both servers in turn, a floor sample before each of them."""
    connections = {tool: Connection(port) for tool, port in ports.items()}
    bodies = {}
    for tool, connection in connections.items():
        await connection.connect()
        _, bodies[tool] = await connection.request(raws[tool])  # untimed: the first large body
    latencies: dict[str, list[float]] = {tool: [] for tool in ports}
    floors = []
    for round_ in range(repeats):
        for tool in _order(round_):
            floors.append(floor())
            start = time.perf_counter()
            status, bodies[tool] = await connections[tool].request(raws[tool])
            latencies[tool].append(time.perf_counter() - start)
            if status != 200:
                raise BenchError(f"{tool}: request failed with {status}: {bodies[tool][:300]!r}")
    for connection in connections.values():
        connection.close()
    return latencies, floors, bodies


def measure_load(
    workload: Workload,
    env: dict[str, str],
    cwd: Path,
    figures: dict[str, Figures],
    floor: Callable[[], float],
    quick: bool,
) -> list[float]:
    """Both servers up at once, driven in turns: each figure pools rounds that alternate
    between them, so a busy moment on the machine falls on both. Returns the floor samples."""
    rounds = 2 if quick else 4
    seconds = (3.0 if quick else 10.0) / rounds
    count = (300 if quick else 2000) // rounds
    with contextlib.ExitStack() as stack:
        servers = {tool: stack.enter_context(serving(tool, workload, env, cwd)) for tool in TOOLS}
        for server in servers.values():
            server.settle()
        ports = {tool: server.port for tool, server in servers.items()}
        singles = {
            tool: [
                http_request(port, "POST", "/invocations", workload.single(i)) for i in range(256)
            ]
            for tool, port in ports.items()
        }
        for tool, port in ports.items():
            figures[tool].ping = _run(closed_loop(port, [http_request(port, "GET", "/ping")], 2.0))
        runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in TOOLS}
        for round_ in range(rounds):
            for tool in _order(round_):
                runs[tool].append(_run(closed_loop(ports[tool], singles[tool], seconds)))
        for tool, parts in runs.items():
            done, elapsed = sum(p["requests"] for p in parts), sum(p["seconds"] for p in parts)
            figures[tool].throughput = {
                "rate": done / elapsed,
                "requests": done,
                "errors": sum(p["errors"] for p in parts),
                "seconds": elapsed,
                "first_error": next((p["first_error"] for p in parts if p["first_error"]), ""),
            }
        for round_ in range(rounds):
            for tool in _order(round_):
                batch = [singles[tool][(round_ * count + i) % 256] for i in range(count)]
                figures[tool].latencies += _run(sequential(ports[tool], batch))[0]
        raws = {
            tool: http_request(port, "POST", "/invocations", workload.big_body)
            for tool, port in ports.items()
        }
        big, floors, bodies = _run(big_requests(ports, raws, floor, 3 if quick else 10))
    for tool in TOOLS:
        if _predictions(bodies[tool]) != workload.expected_big:
            raise BenchError(f"{tool}: 10k-row predictions differ from the model's")
        figures[tool].big = big[tool]
    return floors


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    unit: str
    target: str
    passes: Callable[[float, float, dict[str, Any]], bool]


def _faster(ratio: float) -> Callable[[float, float, dict[str, Any]], bool]:
    return lambda cairn, mlflow, _: cairn > 0 and mlflow / cairn >= ratio


SCENARIOS = {
    "startup": Scenario("serve_startup", "models serve: ready (/ping)", "s", ">= 3x", _faster(3)),
    "first_request": Scenario(
        "serve_first_request",
        "models serve: first request",
        "s",
        f"Cairn <= {FIRST_REQUEST_SLACK:g}x a later one",
        lambda cairn, _, details: cairn <= FIRST_REQUEST_SLACK * details["cairn_after_idle_s"],
    ),
    "throughput": Scenario(
        "serve_throughput",
        f"models serve: {CLIENTS} clients, 1 row",
        "req/s",
        ">= 3x",
        lambda cairn, mlflow, details: mlflow > 0 and cairn / mlflow >= 3 and not details["errors"],
    ),
    "latency_p99": Scenario(
        "serve_latency_p99", "models serve: 1-row p99", "s", ">= 3x", _faster(3)
    ),
    "big_request": Scenario(
        "serve_big_request",
        f"models serve: {BIG_ROWS:,} rows",
        "s",
        ">= 3x, <= 2x floor",
        lambda cairn, mlflow, details: mlflow / cairn >= 3 and cairn <= 2 * details["floor_s"],
    ),
}


def _row(
    scenario: Scenario, cairn: float, mlflow: float, method: str, details: dict[str, Any]
) -> dict[str, Any]:
    speedup = (
        (cairn / mlflow if mlflow else math.inf)
        if scenario.unit != "s"
        else (mlflow / cairn if cairn else math.inf)
    )
    return {
        "name": scenario.name,
        "title": scenario.title,
        "unit": scenario.unit,
        "target": scenario.target,
        "cairn": cairn,
        "mlflow": mlflow,
        "speedup": speedup,
        "result": "PASS" if scenario.passes(cairn, mlflow, details) else "FAIL",
        "method": method,
        "details": details,
        "problems": [],
        "error": None,
    }


def _error_rows(error: str) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "title": s.title,
            "unit": s.unit,
            "target": s.target,
            "result": "ERROR",
            "error": error,
        }
        for s in SCENARIOS.values()
    ]


def run(quick: bool = False, verbose: bool = True) -> list[dict[str, Any]]:
    """Measure both servers on the same model; one result dict per scenario."""

    def log(message: str) -> None:
        if verbose:
            print(f"    {message}", file=sys.stderr, flush=True)

    for distribution in ("cairn-ml", "mlflow"):
        if _harness.installed_version(distribution) == "not installed":
            return _error_rows(f"{distribution} is not installed for {sys.executable}")
    starts = 1 if quick else 3
    figures = {tool: Figures() for tool in TOOLS}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
            work = Path(tmp)
            workload = build_workload(work)
            env = tool_env(work / "pycache")
            floor = floor_task(workload)
            for repeat in range(-1, starts):  # one untimed start each writes bytecode caches
                for tool in TOOLS if repeat % 2 == 0 else TOOLS[::-1]:
                    sample = Figures()
                    measure_startups(tool, workload, env, work, sample)
                    log(
                        f"{tool} /ping after {sample.startup[0]:.2f} s, first request "
                        f"{sample.first_request[0] * 1000:.1f} ms, after idle "
                        f"{statistics.median(sample.after_idle) * 1000:.1f} ms, back to back "
                        f"{sample.later_median[0] * 1000:.1f} ms"
                        + (" (warm-up)" if repeat < 0 else "")
                    )
                    if repeat >= 0:
                        figures[tool].startup += sample.startup
                        figures[tool].first_request += sample.first_request
                        figures[tool].later_median += sample.later_median
                        figures[tool].after_idle += sample.after_idle
            floors = measure_load(workload, env, work, figures, floor, quick)
            figures["cairn"].floor = floors
            for tool in TOOLS:
                f = figures[tool]
                log(
                    f"{tool}: /ping {f.ping['rate']:,.0f} req/s, /invocations "
                    f"{f.throughput['rate']:,.0f} req/s, p50/p99 "
                    f"{percentile(f.latencies, 0.5) * 1000:.2f}/"
                    f"{percentile(f.latencies, 0.99) * 1000:.2f} ms, "
                    f"10k rows {statistics.median(f.big) * 1000:.1f} ms"
                )
            log(f"floor {statistics.median(floors) * 1000:.1f} ms")
    except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
        return _error_rows(f"{type(exc).__name__}: {exc}")
    return _rows(figures, starts, len(workload.big_body))


def _rows(figures: dict[str, Figures], starts: int, big_bytes: int) -> list[dict[str, Any]]:
    cairn, mlflow = figures["cairn"], figures["mlflow"]
    med = statistics.median
    floor = med(cairn.floor)  # sampled between the large requests: the load they saw
    rows = []
    rows.append(
        _row(
            SCENARIOS["startup"],
            med(cairn.startup),
            med(mlflow.startup),
            f"Popen of `cairn models serve` / `mlflow models serve --env-manager local` to the "
            f"first 200 from /ping (polled every 10 ms); median of {starts} after 1 untimed "
            "start each (bytecode caches)",
            {"cairn_samples": cairn.startup, "mlflow_samples": mlflow.startup},
        )
    )
    rows.append(
        _row(
            SCENARIOS["first_request"],
            med(cairn.first_request),
            med(mlflow.first_request),
            f"the first single-row /invocations right after /ping answered (on the connection of "
            f"one more /ping, untimed); later ones after {IDLE_PAUSE_S:g} s idle, like the first: "
            f"Cairn {med(cairn.after_idle) * 1000:.2f} ms, MLflow "
            f"{med(mlflow.after_idle) * 1000:.2f} ms; back to back: Cairn "
            f"{med(cairn.later_median) * 1000:.2f} ms, MLflow "
            f"{med(mlflow.later_median) * 1000:.2f} ms",
            {
                "cairn_after_idle_s": med(cairn.after_idle),
                "mlflow_after_idle_s": med(mlflow.after_idle),
                "cairn_later_median_s": med(cairn.later_median),
                "mlflow_later_median_s": med(mlflow.later_median),
                "cairn_samples": cairn.first_request,
                "mlflow_samples": mlflow.first_request,
            },
        )
    )
    errors = cairn.throughput["errors"]
    rows.append(
        _row(
            SCENARIOS["throughput"],
            cairn.throughput["rate"],
            mlflow.throughput["rate"],
            f"{CLIENTS} keep-alive connections from one asyncio client, each sending the next "
            f"single-row dataframe_split as soon as its answer is read, for "
            f"{cairn.throughput['seconds']:.0f} s per server in rounds alternating between the "
            f"two (both running throughout); the same client reaches "
            f"{cairn.ping['rate']:,.0f} req/s on Cairn's /ping and {mlflow.ping['rate']:,.0f} on "
            f"MLflow's; errors: Cairn {errors}, MLflow {mlflow.throughput['errors']}",
            {
                "cairn": cairn.throughput,
                "mlflow": mlflow.throughput,
                "errors": errors,
                "ping": {"cairn": cairn.ping, "mlflow": mlflow.ping},
            },
        )
    )
    p = {tool: {q: percentile(f.latencies, q) for q in (0.5, 0.99)} for tool, f in figures.items()}
    rows.append(
        _row(
            SCENARIOS["latency_p99"],
            p["cairn"][0.99],
            p["mlflow"][0.99],
            f"{len(cairn.latencies):,} single-row requests one after another on a keep-alive "
            f"connection, in rounds alternating between the servers; p50: Cairn "
            f"{p['cairn'][0.5] * 1000:.2f} ms, MLflow "
            f"{p['mlflow'][0.5] * 1000:.2f} ms",
            {
                "p50": {tool: p[tool][0.5] for tool in TOOLS},
                "p99": {tool: p[tool][0.99] for tool in TOOLS},
            },
        )
    )
    rows.append(
        _row(
            SCENARIOS["big_request"],
            med(cairn.big),
            med(mlflow.big),
            f"one dataframe_split of {BIG_ROWS:,} rows x {FEATURES} ({big_bytes / 1e6:.1f} MB), "
            f"median of {len(cairn.big)} after 1 untimed, alternating between the servers; floor "
            f"(orjson "
            f"decode + DataFrame + predict in this process, sampled between the requests) "
            f"{floor * 1000:.1f} ms, Cairn at {med(cairn.big) / floor:.2f}x the floor",
            {
                "floor_s": floor,
                "floor_samples": cairn.floor,
                "cairn_samples": cairn.big,
                "mlflow_samples": mlflow.big,
            },
        )
    )
    return rows


# -- command line -----------------------------------------------------------------------------


def render_notes(rows: Sequence[dict[str, Any]]) -> str:
    return "\n".join(
        f"- {row['name']}: " + (row.get("method") or f"ERROR {row.get('error')}") for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    env = _harness.environment()
    print(
        f"Cairn {env['cairn']} ({env['cairn_commit'] or 'no git'}) models serve vs MLflow "
        f"{env['mlflow']} models serve | Python {env['python']} | {env['cpus']} CPUs | "
        f"load {env['load_average_at_start'][0]:.2f} | {'quick' if args.quick else 'full'} sizes",
        flush=True,
    )
    rows = run(args.quick, verbose=not args.quiet)
    print()
    print(_harness.render_rows(rows))
    print()
    print(render_notes(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "quick": args.quick, "scenarios": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    results = {row["result"] for row in rows}
    if "ERROR" in results:
        return 2
    return 1 if "FAIL" in results else 0


if __name__ == "__main__":
    sys.exit(main())

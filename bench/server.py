"""Cairn's tracking server vs ``mlflow server``: the REST API under load, side by side.

    .venv/bin/python bench/server.py                  # every scenario, full sizes
    .venv/bin/python bench/server.py --quick          # smaller sizes, fewer repeats
    .venv/bin/python bench/server.py --only search --json results.json

Both servers run as subprocesses (``cairn server`` and ``mlflow server``, each with its default
worker setup unless ``--cairn-workers``/``--mlflow-workers`` say otherwise) on free 127.0.0.1
ports, each on a fresh SQLite store in its own temporary directory, and this process drives
them over HTTP with httpx, the same requests for both. Conventions follow ``bench/tracking.py``
(clean environments, alternating order, medians, the table, ``--json``, exit status); the search
data set comes from its workload module, ``bench/_harness.py``.

Exit status: 0 when every scenario passes, 1 when one misses its target or returns results
that do not match, 2 when one could not be measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import shutil
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

import _harness  # bench/_harness.py, beside this script: the search data set (stdlib only)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from multiprocessing.synchronize import Barrier

    import httpx

HARNESS = Path(_harness.__file__).resolve()
TOOLS = _harness.TOOLS
BIN = Path(sys.executable).parent
API = "/api/2.0/mlflow"
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
WORKER_TIMEOUT_S = 1800
STARTUP_TARGET_S = 2.0  # Cairn's /health after start, absolute
CONCURRENT_CLIENTS = 8
STALL_S = 0.040  # Linux's minimum delayed-ACK timeout: Nagle + delayed ACK stalls this long
BATCH_KEYS = 10
BATCH_SIZE = 1000  # metrics per log-batch request: MLflow's limit
# As in bench/tracking.py: both tools run with default settings (their variables dropped), no
# MLflow telemetry, and bytecode caches written to a folder of this invocation so that start-up
# is measured as users see it, from .pyc files, even where PYTHONDONTWRITEBYTECODE is set.
TOOL_ENV_PREFIXES = ("CAIRN_", "MLFLOW_")
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true"}
DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


class BenchError(Exception):
    """A measurement could not be taken (a server did not start, a check did not hold)."""


# -- the servers ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One tool's tracking server: a subprocess in its own session, on a store in ``cwd``.

    Cairn: ``cairn server --backend-store-uri <cwd>/.cairn`` (SQLite ``cairn.db`` + artifacts).
    MLflow: ``mlflow server --backend-store-uri sqlite:///<cwd>/mlflow.db`` (its artifacts go
    to ``<cwd>/mlartifacts``, proxied, as by default). Both are the stores each tool's own API
    creates in a clean working directory, so ``_harness.search_populate`` can fill them first.
    """

    def __init__(self, tool: str, cwd: Path, workers: int | None, env: dict[str, str]) -> None:
        self.tool = tool
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"{tool}-server.log"
        if tool == "cairn":
            command = [str(BIN / "cairn"), "server", "--backend-store-uri", str(cwd / ".cairn")]
        else:
            command = [str(BIN / "mlflow"), "server"]
            command += ["--backend-store-uri", f"sqlite:///{cwd / 'mlflow.db'}"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        if workers is not None:
            command += ["--workers", str(workers)]
        self.command = command
        with self.log_path.open("wb") as log:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers and helpers share its process group
            )

    def wait_healthy(self) -> float:
        """Seconds from ``Popen`` to the first 200 OK from ``/health`` (a new connection each)."""
        import httpx

        deadline = self.started_at + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.tool} server exited {self.proc.returncode} during start-up:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return time.perf_counter() - self.started_at
            time.sleep(0.01)
        raise BenchError(f"{self.tool} server: no /health after {START_TIMEOUT_S} s")

    def settle(self, quiet_cpu: float = 0.1, window: float = 0.5) -> float:
        """Wait until the server's process group is idle; return the seconds waited.

        ``/health`` can answer while a server's helper processes are still starting (MLflow's
        job runner and huey consumers, its other workers): load that is not the request path.
        Throughput is measured once the whole group uses under ``quiet_cpu`` of a core for two
        windows in a row (Linux ``/proc``; elsewhere a fixed 5 s).
        """
        start = time.perf_counter()
        if not Path("/proc").is_dir():
            time.sleep(5)
            return time.perf_counter() - start
        quiet = 0
        before = _group_cpu_seconds(self.proc.pid)
        while quiet < 2 and time.perf_counter() - start < START_TIMEOUT_S:
            time.sleep(window)
            now = _group_cpu_seconds(self.proc.pid)
            quiet = quiet + 1 if now - before < quiet_cpu * window else 0
            before = now
        return time.perf_counter() - start

    def log_tail(self) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"))
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it lingers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        # Helpers (MLflow's job runner) may outlive the leader for a moment.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process in process group ``pgid`` (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@contextlib.contextmanager
def running(bench: ServerBench, tool: str, cwd: Path | None = None) -> Iterator[Server]:
    """A healthy server of ``tool`` on a fresh store (or on the store already in ``cwd``)."""
    with contextlib.ExitStack() as stack:
        if cwd is None:
            cwd = stack.enter_context(_fresh_dir(tool))
        server = Server(tool, cwd, bench.server_workers[tool], bench.env(tool))
        try:
            server.wait_healthy()
            settled = server.settle()
            bench.log(f"{tool} server idle {settled:.1f} s after /health")
            yield server
        finally:
            server.stop()


# -- requests ---------------------------------------------------------------------------------


def _client(server: Server) -> httpx.Client:
    import httpx

    return httpx.Client(base_url=f"{server.url}{API}", timeout=120.0)


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise BenchError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: "
            f"{response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


def _create_run(client: httpx.Client, experiment_id: str = "0") -> str:
    body = {"experiment_id": experiment_id, "start_time": _now_ms(), "run_name": "bench"}
    return str(_ok(client.post("/runs/create", json=body))["run"]["info"]["run_id"])


def _history_length(client: httpx.Client, run_id: str, key: str) -> int:
    """Values of ``key`` the server holds for ``run_id``, every page."""
    count, token = 0, None
    while True:
        params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
        if token:
            params["page_token"] = token
        body = _ok(client.get("/metrics/get-history", params=params))
        count += len(body.get("metrics", []))
        token = body.get("next_page_token")
        if not token:
            return count


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """Both tools' figures for one scenario, plus what the notes should say."""

    cairn: float
    mlflow: float
    method: str
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A measurement and its target: a speed-up over MLflow, or a check on Cairn alone."""

    name: str
    title: str
    unit: str  # "s" (lower is better) or a rate such as "req/s" (higher is better)
    target: str  # shown in the table
    passes: Callable[[Outcome], bool]
    measure: Callable[[ServerBench], Outcome]

    def speedup(self, outcome: Outcome) -> float:
        if self.unit != "s":
            return outcome.cairn / outcome.mlflow if outcome.mlflow else math.inf
        return outcome.mlflow / outcome.cairn if outcome.cairn else math.inf


def more_per_second(ratio: float) -> Callable[[Outcome], bool]:
    """Cairn's rate is at least ``ratio`` times MLflow's."""
    return lambda outcome: outcome.mlflow > 0 and outcome.cairn / outcome.mlflow >= ratio


def faster_by(ratio: float) -> Callable[[Outcome], bool]:
    """Cairn's time is at most MLflow's divided by ``ratio``."""
    return lambda outcome: outcome.cairn > 0 and outcome.mlflow / outcome.cairn >= ratio


@dataclass(slots=True)
class Row:
    scenario: Scenario
    outcome: Outcome | None = None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.outcome is None:
            return "ERROR"
        if self.outcome.problems:
            return "INVALID"
        return "PASS" if self.scenario.passes(self.outcome) else "FAIL"


class ServerBench:
    """Options of this invocation and the helpers scenarios measure with."""

    def __init__(
        self,
        quick: bool,
        repeats: int | None,
        verbose: bool,
        pycache: Path,
        server_workers: dict[str, int | None],
    ) -> None:
        self.quick = quick
        self.repeats_override = repeats
        self.verbose = verbose
        self.pycache = pycache
        self.server_workers = server_workers

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def repeats(self, full: int, quick: int) -> int:
        return self.repeats_override or self.size(full, quick)

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"    {message}", file=sys.stderr, flush=True)

    def env(self, tool: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(TOOL_ENV_PREFIXES) and k not in DROPPED_ENV
        }
        env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        if tool == "mlflow":
            env.update(MLFLOW_ENV)
        return env

    def harness(self, tool: str, task: str, params: Mapping[str, Any], cwd: Path) -> dict[str, Any]:
        """Run one ``bench/_harness.py`` task in a subprocess started in ``cwd``."""
        fd, result_name = tempfile.mkstemp(prefix="bench-result-", suffix=".json")
        os.close(fd)
        result_path = Path(result_name)
        command = [sys.executable, str(HARNESS), tool, task, json.dumps(params), str(result_path)]
        try:
            proc = subprocess.run(
                command,
                cwd=cwd,
                env=self.env(tool),
                capture_output=True,
                text=True,
                timeout=WORKER_TIMEOUT_S,
                check=False,
            )
            if proc.returncode != 0:
                raise BenchError(f"{tool} {task} exited {proc.returncode}:\n{_tail(proc.stderr)}")
            result: dict[str, Any] = json.loads(result_path.read_text())
        finally:
            result_path.unlink(missing_ok=True)
        self.log(f"{tool} {task}: {result['value']:,.4g}")
        return result


@contextlib.contextmanager
def _fresh_dir(tool: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-server-{tool}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _order(repeat: int) -> tuple[str, ...]:
    """Alternate which tool goes first, so drift in machine load hits both alike."""
    return TOOLS if repeat % 2 == 0 else TOOLS[::-1]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _median_by_tool(samples: dict[str, list[float]]) -> tuple[float, float]:
    return statistics.median(samples["cairn"]), statistics.median(samples["mlflow"])


# -- scenarios --------------------------------------------------------------------------------


def measure_startup(bench: ServerBench) -> Outcome:
    repeats = bench.repeats(3, 1)
    samples: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    idle: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    for repeat in range(-1, repeats):  # one untimed start each writes the bytecode caches
        for tool in _order(repeat):
            with _fresh_dir(tool) as cwd:
                server = Server(tool, cwd, bench.server_workers[tool], bench.env(tool))
                try:
                    seconds = server.wait_healthy()
                    if repeat >= 0:
                        samples[tool].append(seconds)
                        idle[tool].append(seconds + server.settle())
                finally:
                    server.stop()
            bench.log(
                f"{tool} /health after {seconds:.3f} s" + (" (warm-up)" if repeat < 0 else "")
            )
    cairn, mlflow = _median_by_tool(samples)
    cairn_idle, mlflow_idle = _median_by_tool(idle)
    return Outcome(
        cairn,
        mlflow,
        f"Popen of the server command to the first 200 OK from /health (polled every 10 ms, a "
        f"new connection each), fresh store (schema created at start-up); median of {repeats} "
        f"after 1 untimed start. The whole process group goes idle (< 10% of a core) after "
        f"{cairn_idle:.1f} s (Cairn) and {mlflow_idle:.1f} s (MLflow)",
        {f"{tool}_samples": values for tool, values in samples.items()}
        | {f"{tool}_idle_after_s": values for tool, values in idle.items()},
    )


def _batch(step0: int, steps: int) -> list[dict[str, Any]]:
    now = _now_ms()
    return [
        {"key": f"m{k:02d}", "value": (k + 1) / (step + 1), "timestamp": now + step, "step": step}
        for step in range(step0, step0 + steps)
        for k in range(BATCH_KEYS)
    ]


def measure_log_batch(bench: ServerBench) -> Outcome:
    requests_per_sample = bench.size(10, 3)
    repeats = bench.repeats(3, 1)
    steps = BATCH_SIZE // BATCH_KEYS
    samples: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    for tool in TOOLS:
        with running(bench, tool) as server, _client(server) as client:
            for _ in range(repeats):
                run_id = _create_run(client)
                bodies = [
                    json.dumps({"run_id": run_id, "metrics": _batch(i * steps, steps)})
                    for i in range(requests_per_sample)
                ]
                headers = {"content-type": "application/json"}
                start = time.perf_counter()
                for body in bodies:
                    _ok(client.post("/runs/log-batch", content=body, headers=headers))
                elapsed = time.perf_counter() - start
                stored = _history_length(client, run_id, "m00")
                if stored != steps * requests_per_sample:
                    raise BenchError(f"{tool}: {stored} of {steps * requests_per_sample} stored")
                samples[tool].append(requests_per_sample * BATCH_SIZE / elapsed)
                bench.log(f"{tool} log-batch: {samples[tool][-1]:,.0f} metrics/s")
    cairn, mlflow = _median_by_tool(samples)
    return Outcome(
        cairn,
        mlflow,
        f"{requests_per_sample} sequential runs/log-batch requests of {BATCH_SIZE:,} metrics "
        f"({BATCH_KEYS} keys x {steps} steps) into one run, one keep-alive connection; bodies "
        f"encoded before timing; median of {repeats} runs",
        {f"{tool}_samples": values for tool, values in samples.items()},
    )


def _log_metric_latencies(client: httpx.Client, run_id: str, calls: int) -> list[float]:
    headers = {"content-type": "application/json"}
    now = _now_ms()
    bodies = [
        json.dumps(
            {"run_id": run_id, "key": "loss", "value": 1 / (i + 1), "timestamp": now + i, "step": i}
        )
        for i in range(calls)
    ]
    latencies = []
    for body in bodies:
        start = time.perf_counter()
        response = client.post("/runs/log-metric", content=body, headers=headers)
        latencies.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise BenchError(f"log-metric -> {response.status_code}: {response.text[:300]}")
    return latencies


def measure_log_metric(bench: ServerBench) -> Outcome:
    calls = bench.size(1000, 200)
    repeats = bench.repeats(3, 1)
    samples: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    latency: dict[str, dict[str, float]] = {}
    stalls: dict[str, int] = {}
    for tool in TOOLS:
        with running(bench, tool) as server, _client(server) as client:
            all_latencies: list[float] = []
            for _ in range(repeats):
                run_id = _create_run(client)
                _log_metric_latencies(client, _create_run(client), 20)  # warm-up, untimed
                start = time.perf_counter()
                all_latencies += _log_metric_latencies(client, run_id, calls)
                elapsed = time.perf_counter() - start
                stored = _history_length(client, run_id, "loss")
                if stored != calls:
                    raise BenchError(f"{tool}: {stored} of {calls} log-metric values stored")
                samples[tool].append(calls / elapsed)
                bench.log(f"{tool} log-metric: {samples[tool][-1]:,.0f} req/s")
            latency[tool] = _percentiles(all_latencies)
            stalls[tool] = sum(1 for seconds in all_latencies if seconds >= STALL_S)
    cairn, mlflow = _median_by_tool(samples)
    return Outcome(
        cairn,
        mlflow,
        f"{calls:,} sequential runs/log-metric requests on one keep-alive httpx.Client "
        f"(TCP_NODELAY, as httpx sets it), after 20 untimed; median of {repeats} runs; "
        f"latency p50/p99: Cairn {latency['cairn']['p50_ms']:.2f}/"
        f"{latency['cairn']['p99_ms']:.2f} ms, MLflow {latency['mlflow']['p50_ms']:.2f}/"
        f"{latency['mlflow']['p99_ms']:.2f} ms; requests >= {STALL_S * 1000:.0f} ms (a delayed-ACK "
        f"stall): Cairn {stalls['cairn']}, MLflow {stalls['mlflow']} of {calls * repeats:,}",
        {f"{tool}_samples": values for tool, values in samples.items()}
        | {"latency": latency, "stalls": stalls},
    )


def _percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1000}


def _concurrent_client(
    url: str, run_id: str, seconds: float, barrier: Barrier, results: Any
) -> None:
    """One client process: log-metric as fast as answers come, for ``seconds``."""
    import httpx

    acked = errors = 0
    first_error = ""
    with httpx.Client(base_url=f"{url}{API}", timeout=60.0) as client:
        client.get("/experiments/get", params={"experiment_id": "0"})  # connect before the start
        barrier.wait(timeout=120)
        start = time.perf_counter()
        deadline = start + seconds
        step = 0
        while time.perf_counter() < deadline:
            body = {
                "run_id": run_id,
                "key": "c",
                "value": step,
                "timestamp": _now_ms(),
                "step": step,
            }
            step += 1
            try:
                response = client.post("/runs/log-metric", json=body)
            except httpx.HTTPError as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 200:
                acked += 1
            else:
                errors += 1
                first_error = first_error or f"{response.status_code}: {response.text[:200]}"
        elapsed = time.perf_counter() - start
    results.put(
        {
            "run_id": run_id,
            "acked": acked,
            "errors": errors,
            "elapsed": elapsed,
            "first_error": first_error,
        }
    )


def run_concurrent_clients(
    url: str, client: httpx.Client, seconds: float
) -> tuple[int, int, float, int, list[dict[str, Any]]]:
    """CONCURRENT_CLIENTS processes logging for ``seconds``, each to its own run: values
    acknowledged, errors, the longest client's seconds, values stored, each client's outcome."""
    context = multiprocessing.get_context("spawn")
    run_ids = [_create_run(client) for _ in range(CONCURRENT_CLIENTS)]
    barrier = context.Barrier(CONCURRENT_CLIENTS + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_concurrent_client, args=(url, run_id, seconds, barrier, results))
        for run_id in run_ids
    ]
    for process in processes:
        process.start()
    try:
        barrier.wait(timeout=120)
        outcomes = [results.get(timeout=seconds + 120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    acked = sum(o["acked"] for o in outcomes)
    errors = sum(o["errors"] for o in outcomes)
    elapsed = max(o["elapsed"] for o in outcomes)
    stored = sum(_history_length(client, run_id, "c") for run_id in run_ids)
    return acked, errors, elapsed, stored, outcomes


def measure_concurrent(bench: ServerBench) -> Outcome:
    seconds = float(bench.size(10, 3))
    figures: dict[str, float] = {}
    details: dict[str, Any] = {}
    problems: list[str] = []
    for tool in TOOLS:
        with running(bench, tool) as server, _client(server) as client:
            acked, errors, elapsed, stored, outcomes = run_concurrent_clients(
                server.url, client, seconds
            )
            figures[tool] = acked / elapsed
            details[tool] = {
                "acked": acked,
                "errors": errors,
                "stored": stored,
                "lost": acked - stored,
                "seconds": elapsed,
                "first_error": next((o["first_error"] for o in outcomes if o["first_error"]), ""),
            }
            bench.log(f"{tool}: {figures[tool]:,.0f} req/s, {errors} errors, {acked - stored} lost")
    cairn = details["cairn"]
    if cairn["errors"] or cairn["stored"] != cairn["acked"]:
        problems.append(
            f"Cairn: {cairn['errors']} errors, {cairn['acked']} acknowledged but {cairn['stored']} "
            f"stored ({cairn['first_error'] or 'no error message'})"
        )
    mlflow = details["mlflow"]
    return Outcome(
        figures["cairn"],
        figures["mlflow"],
        f"{CONCURRENT_CLIENTS} client processes, each its own run and keep-alive httpx.Client, "
        f"log-metric in a closed loop for {seconds:g} s; stored values counted afterwards with "
        f"metrics/get-history. Cairn: {cairn['errors']} errors, {cairn['lost']} lost of "
        f"{cairn['acked']:,}; MLflow: {mlflow['errors']} errors, {mlflow['lost']} lost of "
        f"{mlflow['acked']:,}"
        + (f" (first error: {mlflow['first_error']})" if mlflow["first_error"] else ""),
        details,
        problems,
    )


def _search(
    client: httpx.Client, experiment_id: str, max_results: int = _harness.SEARCH_MAX_RESULTS
) -> list[str]:
    """The benchmark search through ``runs/search``: names of the runs found, in order."""
    body = {
        "experiment_ids": [experiment_id],
        "filter": _harness.SEARCH_FILTER,
        "order_by": [_harness.SEARCH_ORDER_BY],
        "max_results": max_results,
    }
    found = _ok(client.post("/runs/search", json=body)).get("runs", [])
    return [run["info"]["run_name"] for run in found]


def measure_search(bench: ServerBench) -> Outcome:
    runs = bench.size(10_000, 2_000)
    repeats = bench.repeats(5, 3)
    seed = _harness.SEARCH_SEED
    expected = _harness.expected_search(
        _harness.search_specs(runs, seed), _harness.SEARCH_MAX_RESULTS
    )
    results: dict[str, dict[str, Any]] = {}
    for tool in TOOLS:
        with _fresh_dir(tool) as cwd:
            populate = bench.harness(tool, "search_populate", {"runs": runs, "seed": seed}, cwd)
            experiment_id = str(populate["experiment_id"])
            with running(bench, tool, cwd) as server, _client(server) as client:
                start = time.perf_counter()
                first = _search(client, experiment_id)
                cold = time.perf_counter() - start
                samples = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    names = _search(client, experiment_id)
                    samples.append(time.perf_counter() - start)
                matching = len(_search(client, experiment_id, max_results=runs))
            results[tool] = {
                "value": statistics.median(samples),
                "cold_s": cold,
                "samples": samples,
                "names": names,
                "consistent": names == first,
                "matching": matching,
                "rows_cloned": populate["rows"],
            }
            bench.log(f"{tool} runs/search: {results[tool]['value'] * 1000:,.1f} ms")
    problems = [
        f"{tool} returned {len(r['names'])} runs that differ from the expected {len(expected)}"
        for tool, r in results.items()
        if r["names"] != expected or not r["consistent"]
    ]
    if results["cairn"]["matching"] != results["mlflow"]["matching"]:
        problems.append(
            f"total matches differ: Cairn {results['cairn']['matching']}, "
            f"MLflow {results['mlflow']['matching']}"
        )
    return Outcome(
        results["cairn"]["value"],
        results["mlflow"]["value"],
        f"POST runs/search over {runs:,} runs (1 logged through each tool's API, the rest cloned "
        f"into its own SQLite schema by bench/_harness.py before the server starts), filter "
        f'"{_harness.SEARCH_FILTER}", order by {_harness.SEARCH_ORDER_BY}, max_results='
        f"{_harness.SEARCH_MAX_RESULTS}, response parsed; median of {repeats} after a cold first "
        f"request (cold: Cairn {results['cairn']['cold_s'] * 1000:,.0f} ms, MLflow "
        f"{results['mlflow']['cold_s'] * 1000:,.0f} ms); both return the expected "
        f"{len(expected)} runs in order ({results['cairn']['matching']:,} match in all)",
        {
            f"{tool}_{key}": r[key]
            for tool, r in results.items()
            for key in ("samples", "cold_s", "matching", "rows_cloned")
        },
        problems,
    )


def _no_errors(outcome: Outcome) -> bool:
    cairn = outcome.details.get("cairn", {})
    return bool(cairn) and cairn["errors"] == 0 and cairn["lost"] == 0


SCENARIOS = (
    Scenario(
        "startup",
        "/health after start",
        "s",
        f"Cairn < {STARTUP_TARGET_S:g} s",
        lambda o: o.cairn < STARTUP_TARGET_S,
        measure_startup,
    ),
    Scenario(
        "log_batch",
        "log-batch (1,000/request)",
        "metrics/s",
        ">= 5x",
        more_per_second(5),
        measure_log_batch,
    ),
    Scenario(
        "log_metric",
        "log-metric, keep-alive",
        "req/s",
        ">= 20x",
        more_per_second(20),
        measure_log_metric,
    ),
    Scenario(
        "concurrent",
        f"{CONCURRENT_CLIENTS} concurrent clients",
        "req/s",
        "0 errors, 0 lost",
        _no_errors,
        measure_concurrent,
    ),
    Scenario("search", "runs/search, 10k runs", "s", ">= 10x", faster_by(10), measure_search),
)


# -- reporting --------------------------------------------------------------------------------


def render_table(rows: Sequence[Row]) -> str:
    header = ("scenario", "Cairn", "MLflow", "speed-up", "target", "result")
    lines: list[tuple[str, ...]] = []
    for row in rows:
        scenario, outcome = row.scenario, row.outcome
        if outcome is None:
            lines.append((scenario.title, "-", "-", "-", scenario.target, row.verdict))
            continue
        lines.append(
            (
                scenario.title,
                _harness.figure(outcome.cairn, scenario.unit),
                _harness.figure(outcome.mlflow, scenario.unit),
                f"{scenario.speedup(outcome):,.1f}x",
                scenario.target,
                row.verdict,
            )
        )
    return _harness.markdown_table(header, lines)


def render_notes(rows: Sequence[Row], bench: ServerBench) -> str:
    setup = ", ".join(
        f"{tool} {'default workers' if n is None else f'--workers {n}'}"
        for tool, n in bench.server_workers.items()
    )
    notes = [f"- servers: {setup} (Cairn's default is 1 uvicorn worker, MLflow's 4)"]
    for row in rows:
        if row.outcome is not None:
            notes.append(f"- {row.scenario.name}: {row.outcome.method}")
            notes.extend(f"  ! {problem}" for problem in row.outcome.problems)
        else:
            notes.append(
                f"- {row.scenario.name}: ERROR\n    " + (row.error or "").replace("\n", "\n    ")
            )
    return "\n".join(notes)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(
        description="Benchmark Cairn's tracking server against mlflow server, side by side.",
        epilog="scenarios: " + ", ".join(names),
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument(
        "--only",
        action="append",
        choices=names,
        metavar="NAME",
        help="run only this scenario (repeatable); one of: " + ", ".join(names),
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--repeats", type=int, metavar="N", help="override every scenario's number of samples"
    )
    parser.add_argument(
        "--cairn-workers", type=int, metavar="N", help="cairn server --workers (default: its own)"
    )
    parser.add_argument(
        "--mlflow-workers", type=int, metavar="N", help="mlflow server --workers (default: its own)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-sample progress")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def run_scenarios(bench: ServerBench, only: Sequence[str] | None) -> list[Row]:
    rows = []
    for scenario in SCENARIOS:
        if only and scenario.name not in only:
            continue
        print(f"[{scenario.name}] {scenario.title} ...", file=sys.stderr, flush=True)
        row = Row(scenario)
        try:
            row.outcome = scenario.measure(bench)
        except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
            row.error = f"{type(exc).__name__}: {exc}"
        rows.append(row)
        if row.outcome is not None:
            print(
                f"    => Cairn {_harness.figure(row.outcome.cairn, scenario.unit)}, MLflow "
                f"{_harness.figure(row.outcome.mlflow, scenario.unit)}: {row.verdict}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def to_json(
    rows: Sequence[Row], env: Mapping[str, Any], quick: bool, workers: Mapping[str, int | None]
) -> dict[str, Any]:
    scenarios = []
    for row in rows:
        entry: dict[str, Any] = {
            "name": row.scenario.name,
            "title": row.scenario.title,
            "unit": row.scenario.unit,
            "target": row.scenario.target,
            "result": row.verdict,
            "error": row.error,
        }
        if row.outcome is not None:
            entry |= {
                "cairn": row.outcome.cairn,
                "mlflow": row.outcome.mlflow,
                "speedup": row.scenario.speedup(row.outcome),
                "method": row.outcome.method,
                "problems": row.outcome.problems,
                "details": row.outcome.details,
            }
        scenarios.append(entry)
    return {
        "environment": dict(env),
        "quick": quick,
        "workers": dict(workers),
        "scenarios": scenarios,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool, distribution in zip(TOOLS, ("cairn-ml", "mlflow"), strict=True):
        if _harness.installed_version(distribution) == "not installed":
            print(
                f"{tool} is not installed for {sys.executable}; run scripts/bench-server.sh",
                file=sys.stderr,
            )
            return 2
    workers = {"cairn": args.cairn_workers, "mlflow": args.mlflow_workers}
    env = _harness.environment()
    print(
        f"Cairn {env['cairn']} ({env['cairn_commit'] or 'no git'}) server vs MLflow "
        f"{env['mlflow']} server | Python {env['python']} | {env['cpus']} CPUs | "
        f"load {env['load_average_at_start'][0]:.2f} | {'quick' if args.quick else 'full'} sizes",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        bench = ServerBench(args.quick, args.repeats, not args.quiet, Path(pycache), workers)
        rows = run_scenarios(bench, args.only)
    print()
    print(render_table(rows))
    print()
    print(render_notes(rows, bench))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = to_json(rows, env, args.quick, workers)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    verdicts = {row.verdict for row in rows}
    if "ERROR" in verdicts:
        return 2
    return 1 if verdicts & {"FAIL", "INVALID"} else 0


if __name__ == "__main__":
    sys.exit(main())

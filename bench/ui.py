"""The web UI in headless Chromium on 100,000 runs: Cairn's UI, and ``mlflow server``'s beside it.

    .venv/bin/python bench/ui.py                   # 100,000 runs, every scenario, both tools
    .venv/bin/python bench/ui.py --quick           # 10,000 runs, fewer repeats
    .venv/bin/python bench/ui.py --skip-mlflow --only runs_first_rows --json ui.json

Both stores get the same runs (``bench/seed_runs.py``'s data, written by bulk INSERTs: Cairn's
through its schema, MLflow's into ``mlflow.db`` after MLflow created it), and both servers run
as subprocesses on free 127.0.0.1 ports. Playwright drives Debian's chromium
(``/usr/bin/chromium``, headless, a fresh profile and a fresh context, hence a cold cache, for
every page load). Times are taken in the page with ``performance.now()``: from navigation start
for page loads, from the click or submit for interactions, until what the user waits for is on
screen (rows rendered, a chart's curve drawn on its canvas). The figure is the median of the
samples; tools alternate sample by sample.

Scenarios and targets (issue #7): the runs page's first rows within 1.5 s of navigation (also
when sorted by a metric through the URL); sorting by a metric and applying a filter within
500 ms; jumping to the end of 100,000 rows within 500 ms, and scrolling through all of them
with 95% of frames under 50 ms; a 100,000-step metric's chart drawn within 1 s. MLflow runs
the page-load scenarios, where its UI has the same page.

Exit status: 0 when every target is met, 1 when one is missed, 2 when a scenario could not be
measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py: the environment record and the table
import seed_runs  # bench/seed_runs.py: the data set, written to both stores

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from playwright.sync_api import Browser, Page

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXPERIMENT = "ui-bench"
START_TIMEOUT_S = 180.0
PAGE_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1400, "height": 900}
SERIES_RGB = (47, 111, 222)  # Cairn's first series colour (ui/src/components/chart.ts)
TOOL_ENV_PREFIXES = ("CAIRN_", "MLFLOW_")

# Marks the moment a selector first matches, from navigation start (installed before load).
MARK_WHEN_PRESENT = """
(selector) => {
  const check = () => {
    if (window.__benchMark === undefined && document.querySelector(selector)) {
      window.__benchMark = performance.now();
    }
    if (window.__benchMark === undefined) requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
}
"""
# Marks the first frame where the canvas under ``selector`` holds ``min`` pixels of ``rgb``.
MARK_WHEN_DRAWN = """
([selector, rgb, min]) => {
  const check = () => {
    const canvas = document.querySelector(selector);
    if (canvas && canvas.width) {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - rgb[0]) < 40 && Math.abs(data[i + 1] - rgb[1]) < 40
            && Math.abs(data[i + 2] - rgb[2]) < 40 && data[i + 3] > 100) n++;
      }
      if (n >= min) { window.__benchMark = performance.now(); return; }
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
}
"""
# Runs ``action`` (a click or submit), then waits frame by frame until ``done()`` holds.
TIME_INTERACTION = """
async ([action, done]) => {
  const act = new Function(action);
  const finished = new Function(`return (${done});`);
  const start = performance.now();
  act();
  await new Promise((resolve, reject) => {
    const limit = start + 60000;
    const check = () => {
      if (finished()) resolve();
      else if (performance.now() > limit) reject(new Error('not done after 60 s: ' + done));
      else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  });
  return performance.now() - start;
}
"""
# Scrolls the grid from top to bottom in ``frames`` frames; the 95th-percentile frame, in ms.
SCROLL_THROUGH = """
async (frames) => {
  const grid = document.querySelector('.grid');
  grid.scrollTop = 0;
  await new Promise(requestAnimationFrame);
  const step = (grid.scrollHeight - grid.clientHeight) / frames;
  let last = performance.now();
  const times = [];
  for (let i = 1; i <= frames; i++) {
    grid.scrollTop = step * i;
    await new Promise(requestAnimationFrame);
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length * 0.95)];
}
"""


class BenchError(Exception):
    """A measurement could not be taken."""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    target_s: float | None  # Cairn's own bound, or None
    mlflow: bool  # MLflow's UI has the same page


SCENARIOS = (
    Scenario("runs_first_rows", "runs page: first rows", 1.5, True),
    Scenario("sorted_first_rows", "runs page sorted by a metric", 1.5, True),
    Scenario("sort_metric", "sort by a metric", 0.5, False),
    Scenario("filter", "apply a filter", 0.5, False),
    Scenario("scroll_end", "jump to the last rows", 0.5, False),
    Scenario("scroll_frames", "scrolling all rows: p95 frame", 0.05, False),
    Scenario("long_chart", "100,000-step chart drawn", 1.0, True),
)


@dataclass
class Store:
    """One tool's seeded store and what the scenarios open in it."""

    tool: str
    cwd: Path
    experiment_id: str
    long_run_id: str
    runs: int


@dataclass
class Row:
    scenario: Scenario
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    timed_out: set[str] = field(default_factory=set)  # never shown within PAGE_TIMEOUT_MS


# -- stores -------------------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(TOOL_ENV_PREFIXES)}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def seed_cairn(cwd: Path, plan: seed_runs.Plan) -> Store:
    result = seed_runs.seed(str(cwd / ".cairn"), plan, EXPERIMENT)
    return Store("cairn", cwd, result["experiment_id"], result["long_run_id"], result["runs"])


def seed_mlflow(cwd: Path, plan: seed_runs.Plan) -> Store:
    """MLflow creates ``mlflow.db`` and the experiment; the same rows then go in with SQL."""
    db = cwd / "mlflow.db"
    create = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mlflow, sys; mlflow.set_tracking_uri(sys.argv[1]); "
            "print(mlflow.MlflowClient().create_experiment(sys.argv[2]))",
            f"sqlite:///{db}",
            EXPERIMENT,
        ],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if create.returncode != 0:
        raise BenchError(f"mlflow could not create its store:\n{create.stderr[-2000:]}")
    experiment_id = create.stdout.strip().splitlines()[-1]
    artifact_root = f"{cwd / 'mlartifacts' / experiment_id}"
    con = sqlite3.connect(db)
    long_run = ""
    try:
        for rows, ids in seed_runs.row_chunks(plan, artifact_root, int(experiment_id)):
            long_run = ids[-1] if plan.long_steps else ""
            with con:
                con.executemany(
                    "INSERT INTO runs (run_uuid, name, source_type, source_name, "
                    "entry_point_name, user_id, status, start_time, end_time, source_version, "
                    "lifecycle_stage, artifact_uri, experiment_id) VALUES (:run_uuid, :name, "
                    "'LOCAL', '', '', :user_id, :status, :start_time, :end_time, '', "
                    ":lifecycle_stage, :artifact_uri, :experiment_id)",
                    rows.runs,
                )
                for table in ("params", "tags"):
                    con.executemany(
                        f"INSERT INTO {table} (key, value, run_uuid) "
                        "VALUES (:key, :value, :run_uuid)",
                        getattr(rows, table),
                    )
                con.executemany(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                    "VALUES (:key, :value, :timestamp, :run_uuid, :step, 0)",
                    rows.metrics,
                )
                con.executemany(
                    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                    "VALUES (:key, :value, :timestamp, :step, 0, :run_uuid)",
                    rows.latest,
                )
    finally:
        con.close()
    runs = plan.runs + (1 if plan.long_steps else 0)
    return Store("mlflow", cwd, experiment_id, long_run, runs)


# -- servers ------------------------------------------------------------------------------------


class Server:
    """A tool's server on its seeded store, in its own process group."""

    def __init__(self, store: Store) -> None:
        self.port = _harness_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = store.cwd / f"{store.tool}-server.log"
        if store.tool == "cairn":
            command = [
                str(BIN / "cairn"),
                "server",
                "--backend-store-uri",
                str(store.cwd / ".cairn"),
            ]
        else:
            command = [str(BIN / "mlflow"), "server", "--backend-store-uri"]
            command.append(f"sqlite:///{store.cwd / 'mlflow.db'}")
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=store.cwd,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy(store.tool)

    def _wait_healthy(self, tool: str) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{tool} server exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise BenchError(f"{tool} server: no /health after {START_TIMEOUT_S} s")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def _harness_free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the pages ----------------------------------------------------------------------------------


CAIRN_RUN_ROW = ".grid-row .grid-cell.pinned a"
# MLflow's runs table (ag-grid) links each run's name to its page.
MLFLOW_RUN_ROW = ".ag-row a[href*='/runs/']"
# MLflow 3 opens experiments on its GenAI overview; the runs table is its own page.
MLFLOW_RUNS = "#/experiments/{id}/runs?workflowType=machine_learning"
# MLflow's metric charts draw a line path per series once the history has loaded.
MLFLOW_CHART_LINE = "svg .scatterlayer .trace path.js-line"


def _open(browser: Browser) -> Page:
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)  # timing scripts use eval
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    return context.new_page()


def _close(page: Page) -> None:
    page.context.close()


def _load_until(page: Page, url: str, script: str, arg: Any) -> float:
    """Seconds from navigation start until the init script ``script(arg)`` marked the page."""
    page.add_init_script(f"({script})({json.dumps(arg)})")
    page.goto(url, wait_until="commit")
    page.wait_for_function("() => window.__benchMark !== undefined", timeout=PAGE_TIMEOUT_MS)
    mark: float = page.evaluate("window.__benchMark")
    return mark / 1000


def _runs_page_load(browser: Browser, store: Store, server: Server, sorted_: bool) -> float:
    page = _open(browser)
    try:
        if store.tool == "cairn":
            url = f"{server.url}/experiments/{store.experiment_id}"
            if sorted_:
                url += "?order=metrics.%60rmse%60+DESC"
            return _load_until(page, url, MARK_WHEN_PRESENT, CAIRN_RUN_ROW)
        url = f"{server.url}/{MLFLOW_RUNS.format(id=store.experiment_id)}"
        if sorted_:
            url += "&orderByKey=metrics.%60rmse%60&orderByAsc=false"
        return _load_until(page, url, MARK_WHEN_PRESENT, MLFLOW_RUN_ROW)
    finally:
        _close(page)


def runs_first_rows(browser: Browser, store: Store, server: Server) -> float:
    return _runs_page_load(browser, store, server, sorted_=False)


def sorted_first_rows(browser: Browser, store: Store, server: Server) -> float:
    return _runs_page_load(browser, store, server, sorted_=True)


def long_chart(browser: Browser, store: Store, server: Server) -> float:
    page = _open(browser)
    try:
        if store.tool == "cairn":
            url = f"{server.url}/runs/{store.long_run_id}?tab=charts&metrics=loss"
            selector = ".chart[data-metric='loss'] canvas"
            return _load_until(page, url, MARK_WHEN_DRAWN, [selector, list(SERIES_RGB), 200])
        url = (
            f"{server.url}/#/experiments/{store.experiment_id}/runs/{store.long_run_id}"
            "/model-metrics"
        )
        return _load_until(page, url, MARK_WHEN_PRESENT, MLFLOW_CHART_LINE)
    finally:
        _close(page)


def _runs_page(browser: Browser, store: Store, server: Server, query: str = "") -> Page:
    page = _open(browser)
    page.goto(f"{server.url}/experiments/{store.experiment_id}{query}")
    page.wait_for_selector(CAIRN_RUN_ROW)
    # The count arrives after the first rows; until then the table ends a page past them.
    page.wait_for_function("() => !document.querySelector('.status').textContent.includes('+')")
    return page


def _interaction(page: Page, action: str, done: str) -> float:
    ms: float = page.evaluate(TIME_INTERACTION, [action, done])
    return ms / 1000


def sort_metric(browser: Browser, store: Store, server: Server) -> float:
    page = _runs_page(browser, store, server)
    try:
        first = page.inner_text(CAIRN_RUN_ROW)
        return _interaction(
            page,
            "document.querySelector(\".grid-th[data-column='metrics.rmse']\").click()",
            "document.querySelector(\".grid-th[aria-sort][data-column='metrics.rmse']\") "
            f"&& (document.querySelector({json.dumps(CAIRN_RUN_ROW)}) || {{}}).textContent "
            f"!== {json.dumps(first)} && !!document.querySelector({json.dumps(CAIRN_RUN_ROW)})",
        )
    finally:
        _close(page)


def apply_filter(browser: Browser, store: Store, server: Server) -> float:
    page = _runs_page(browser, store, server)
    try:
        query = "params.model = 'ridge' and metrics.rmse < 0.2"
        return _interaction(
            page,
            f"const input = document.querySelector('.filter-input'); input.value = "
            f"{json.dumps(query)}; input.form.requestSubmit();",
            "/match/.test((document.querySelector('.status') || {}).textContent || '') "
            f"&& !!document.querySelector({json.dumps(CAIRN_RUN_ROW)})",
        )
    finally:
        _close(page)


def scroll_end(browser: Browser, store: Store, server: Server) -> float:
    page = _runs_page(browser, store, server)
    try:
        last = f".grid-row[aria-rowindex='{store.runs}'] .grid-cell.pinned a"
        return _interaction(
            page,
            "const g = document.querySelector('.grid'); g.scrollTop = g.scrollHeight;",
            f"!!document.querySelector({json.dumps(last)})",
        )
    finally:
        _close(page)


def scroll_frames(browser: Browser, store: Store, server: Server) -> float:
    page = _runs_page(browser, store, server)
    try:
        p95: float = page.evaluate(SCROLL_THROUGH, 240)
        return p95 / 1000
    finally:
        _close(page)


MEASURES: dict[str, Callable[[Browser, Store, Server], float]] = {
    "runs_first_rows": runs_first_rows,
    "sorted_first_rows": sorted_first_rows,
    "sort_metric": sort_metric,
    "filter": apply_filter,
    "scroll_end": scroll_end,
    "scroll_frames": scroll_frames,
    "long_chart": long_chart,
}


# -- driver -------------------------------------------------------------------------------------


@dataclass
class Options:
    plan: seed_runs.Plan
    repeats: int
    only: list[str]
    mlflow: bool
    json_path: Path | None
    quiet: bool


def _log(options: Options, message: str) -> None:
    if not options.quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def measure(options: Options, workdir: Path) -> list[Row]:
    tools = ["cairn", "mlflow"] if options.mlflow else ["cairn"]
    stores: dict[str, Store] = {}
    for tool in tools:
        cwd = workdir / tool
        cwd.mkdir()
        started = time.perf_counter()
        stores[tool] = (seed_cairn if tool == "cairn" else seed_mlflow)(cwd, options.plan)
        _log(
            options,
            f"{tool}: seeded {stores[tool].runs:,} runs in {time.perf_counter() - started:.0f} s",
        )
    rows = [Row(s) for s in SCENARIOS if not options.only or s.name in options.only]
    servers = {tool: Server(stores[tool]) for tool in tools}
    try:
        with _browser() as browser:
            for row in rows:
                active = [t for t in tools if t == "cairn" or row.scenario.mlflow]
                # Untimed warm-up per tool: server caches and the OS page cache, for both alike.
                for tool in active:
                    _sample(options, row, browser, stores[tool], servers[tool], record=False)
                for i in range(options.repeats):
                    order = active if i % 2 == 0 else active[::-1]
                    for tool in order:
                        _sample(options, row, browser, stores[tool], servers[tool], record=True)
    finally:
        for server in servers.values():
            server.stop()
    return rows


def _sample(
    options: Options, row: Row, browser: Browser, store: Store, server: Server, record: bool
) -> None:
    if store.tool in row.errors:
        return
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        value = MEASURES[row.scenario.name](browser, store, server)
    except PageTimeout:
        # A page that never shows is a figure (over the limit), not a failure to measure.
        row.timed_out.add(store.tool)
        row.errors[store.tool] = f"not shown within {PAGE_TIMEOUT_MS // 1000} s"
        _log(options, f"  {row.scenario.name} {store.tool}: {row.errors[store.tool]}")
        return
    except Exception as exc:  # any failure is reported in the table, not raised
        row.errors[store.tool] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        _log(options, f"  {row.scenario.name} {store.tool}: ERROR {row.errors[store.tool]}")
        return
    if record:
        row.samples.setdefault(store.tool, []).append(value)
    note = "" if record else " (warm-up)"
    _log(options, f"  {row.scenario.name} {store.tool}: {value * 1000:.0f} ms{note}")


def _figure(row: Row, tool: str) -> str:
    if tool in row.timed_out:
        return f"> {PAGE_TIMEOUT_MS // 1000} s"
    if tool in row.errors:
        return "ERROR"
    samples = row.samples.get(tool)
    return _harness.figure(statistics.median(samples), "s") if samples else "-"


def verdict(row: Row) -> str:
    if "cairn" in row.timed_out:
        return "FAIL"
    if "cairn" in row.errors:
        return "ERROR"
    samples = row.samples.get("cairn")
    if not samples or row.scenario.target_s is None:
        return "-"
    return "PASS" if statistics.median(samples) <= row.scenario.target_s else "FAIL"


def table(rows: Sequence[Row]) -> str:
    lines = []
    for row in rows:
        cairn, mlflow = row.samples.get("cairn"), row.samples.get("mlflow")
        ratio = "-"
        if cairn and mlflow:
            ratio = f"{statistics.median(mlflow) / statistics.median(cairn):.1f}x"
        elif cairn and "mlflow" in row.timed_out:
            ratio = f"> {PAGE_TIMEOUT_MS / 1000 / statistics.median(cairn):.0f}x"
        target = (
            f"<= {_harness.figure(row.scenario.target_s, 's')}" if row.scenario.target_s else "-"
        )
        lines.append(
            (
                row.scenario.title,
                _figure(row, "cairn"),
                _figure(row, "mlflow"),
                ratio,
                target,
                verdict(row),
            )
        )
    header = ("scenario", "Cairn", "MLflow", "speed-up", "target", "result")
    return _harness.markdown_table(header, lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="runs in each store (100,000)")
    parser.add_argument("--quick", action="store_true", help="10,000 runs, 2 samples")
    parser.add_argument("--repeats", type=int, default=None, help="samples per tool (5)")
    parser.add_argument("--only", action="append", default=[], choices=[s.name for s in SCENARIOS])
    parser.add_argument("--skip-mlflow", action="store_true", help="measure Cairn only")
    parser.add_argument("--json", type=Path, default=None, help="write figures and samples")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    runs = args.runs or (10_000 if args.quick else 100_000)
    plan = seed_runs.Plan(runs, 100, 1000, 100_000, min(2000, runs // 10), 7)
    options = Options(
        plan,
        args.repeats or (2 if args.quick else 5),
        args.only,
        not args.skip_mlflow,
        args.json,
        args.quiet,
    )
    environment = _harness.environment()
    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-ui-"))
    try:
        rows = measure(options, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nWeb UI, {plan.runs:,} runs (+ one {plan.long_steps:,}-step run), headless Chromium")
    print(table(rows))
    for row in rows:
        for tool, error in row.errors.items():
            print(f"- {row.scenario.name} ({tool}): {error}")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"\nNote: load average {load:.1f} on {os.cpu_count()} CPUs: figures are noisy.")
    if options.json_path:
        options.json_path.write_text(
            json.dumps(
                {
                    "environment": environment,
                    "runs": plan.runs,
                    "results": [
                        {
                            "scenario": r.scenario.name,
                            "target_s": r.scenario.target_s,
                            "samples": r.samples,
                            "errors": r.errors,
                            "timed_out": sorted(r.timed_out),
                            "result": verdict(r),
                        }
                        for r in rows
                    ],
                },
                indent=2,
            )
        )
    verdicts = [verdict(r) for r in rows]
    if "ERROR" in verdicts:
        return 2
    return 1 if "FAIL" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())

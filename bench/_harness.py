"""The workloads ``bench/tracking.py`` times, one tool per fresh subprocess.

    python bench/_harness.py TOOL TASK PARAMS_JSON RESULT_PATH

TOOL is ``cairn`` or ``mlflow``. The driver starts every process in a fresh temporary working
directory, so each tool opens its default local store there (Cairn: ``.cairn/``; MLflow: the
``sqlite:///mlflow.db`` that ``mlflow.get_tracking_uri()`` returns in a clean directory). Each
task writes ``{"value": <figure>, ...details}`` as JSON to RESULT_PATH.

Only the workload itself sits between the ``time.perf_counter()`` calls: importing the tool,
opening its store, creating the experiment and building inputs happen before, read-back checks
after. This module imports nothing but the standard library at the top, so the driver can
import it for the search data set without loading either tool.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

TOOLS = ("cairn", "mlflow")
EXPERIMENT = "bench"

# The search data set: every run logs these params and, at each of STEPS steps, these metrics.
SEARCH_SEED = 20240611
SEARCH_STEPS = 5
SEARCH_MODELS = ("ridge", "lasso", "elasticnet", "random_forest")
SEARCH_FILTER = "metrics.rmse < 0.5 and params.model = 'ridge'"
SEARCH_ORDER_BY = "metrics.rmse ASC"
SEARCH_MAX_RESULTS = 100
# Tables (same names in both schemas) whose ``value`` column the clones rewrite per run.
PARAM_TABLES = frozenset({"params"})
METRIC_TABLES = frozenset({"metrics", "latest_metrics"})
SHIFTED_TIME_COLUMNS = frozenset({"start_time", "end_time", "timestamp"})

Result = dict[str, Any]


# -- the two tools behind one small interface -------------------------------------------------


class Tool:
    """The public API of Cairn or MLflow, loaded in this process with default settings."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.notes: list[str] = []
        if name == "cairn":
            import cairn
            import cairn.entities

            self.fluent: Any = cairn
            self.metric_cls: Any = cairn.entities.Metric
            self.store_uri = cairn.get_tracking_uri()
        elif name == "mlflow":
            import mlflow
            import mlflow.entities

            self.fluent = mlflow
            self.metric_cls = mlflow.entities.Metric
            uri = mlflow.get_tracking_uri()
            if not uri.startswith("sqlite:"):
                # MLflow < 3 defaults to the ./mlruns file store; compare SQL with SQL.
                self.notes.append(f"default tracking URI was {uri}; using sqlite:///mlflow.db")
                uri = "sqlite:///mlflow.db"
                mlflow.set_tracking_uri(uri)
            self.store_uri = uri
        else:
            raise SystemExit(f"unknown tool {name!r}; expected one of {TOOLS}")

    def client(self) -> Any:
        if self.name == "cairn":
            return self.fluent.TrackingClient(self.fluent.get_tracking_uri())
        return self.fluent.MlflowClient()

    def flush(self) -> None:
        """Wait for pending writes (Cairn's async logger; MLflow's async queue, if used)."""
        if self.name == "cairn":
            self.fluent.flush()
        else:
            self.fluent.flush_async_logging()

    def db_path(self) -> Path:
        """The SQLite file behind the default store."""
        if self.name == "cairn":
            return Path(".cairn", "cairn.db")
        prefix = "sqlite:///"
        if not self.store_uri.startswith(prefix):
            raise RuntimeError(f"MLflow store {self.store_uri} is not a SQLite file")
        return Path(self.store_uri.removeprefix(prefix))

    def result(self, value: float, **details: Any) -> Result:
        return {"value": value, "store": self.store_uri, "notes": self.notes, **details}


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


# -- logging workloads ------------------------------------------------------------------------


def log_metric(tool: Tool, calls: int) -> Result:
    """``calls`` x ``log_metric`` in one active run, timed until flushed to the store."""
    fluent = tool.fluent
    fluent.set_experiment(EXPERIMENT)
    run = fluent.start_run()
    run_id = run.info.run_id
    start = time.perf_counter()
    for step in range(calls):
        fluent.log_metric("loss", 1.0 / (step + 1), step=step)
    tool.flush()
    elapsed = time.perf_counter() - start
    fluent.end_run()
    stored = len(tool.client().get_metric_history(run_id, "loss"))
    _expect(stored == calls, f"{stored} of {calls} logged values reached the store")
    return tool.result(_rate(calls, elapsed), seconds=elapsed, calls=calls)


def log_metrics(tool: Tool, steps: int, keys: int) -> Result:
    """``steps`` x ``log_metrics({keys names})``: the fluent batch path, timed until flushed."""
    fluent = tool.fluent
    fluent.set_experiment(EXPERIMENT)
    run = fluent.start_run()
    run_id = run.info.run_id
    names = [f"m{k:03d}" for k in range(keys)]
    payloads = [
        {name: (k + 1) / (step + 1) for k, name in enumerate(names)} for step in range(steps)
    ]
    start = time.perf_counter()
    for step, payload in enumerate(payloads):
        fluent.log_metrics(payload, step=step)
    tool.flush()
    elapsed = time.perf_counter() - start
    fluent.end_run()
    stored = len(tool.client().get_metric_history(run_id, names[-1]))
    _expect(stored == steps, f"{stored} of {steps} steps of {names[-1]} reached the store")
    total = steps * keys
    return tool.result(_rate(total, elapsed), seconds=elapsed, metrics=total)


def log_batch(tool: Tool, metrics: int, keys: int) -> Result:
    """One ``client.log_batch(run_id, metrics=[...])`` call with ``metrics`` values."""
    fluent = tool.fluent
    fluent.set_experiment(EXPERIMENT)
    run = fluent.start_run()
    run_id = run.info.run_id
    client = tool.client()
    now = int(time.time() * 1000)
    steps = metrics // keys
    batch = [
        tool.metric_cls(f"m{k:03d}", (k + 1) / (step + 1), now + step, step)
        for step in range(steps)
        for k in range(keys)
    ]
    start = time.perf_counter()
    client.log_batch(run_id, metrics=batch)
    elapsed = time.perf_counter() - start
    fluent.end_run()
    stored = len(client.get_metric_history(run_id, "m000"))
    _expect(stored == steps, f"{stored} of {steps} steps of m000 reached the store")
    return tool.result(_rate(len(batch), elapsed), seconds=elapsed, metrics=len(batch))


def create_runs(tool: Tool, runs: int, params: int, metrics: int) -> Result:
    """``runs`` x (start_run, log_params, log_metrics, end_run) through the fluent API."""
    fluent = tool.fluent
    experiment_id = fluent.set_experiment(EXPERIMENT).experiment_id
    param_sets = [{f"p{k}": f"{i}-{k}" for k in range(params)} for i in range(runs)]
    metric_sets = [{f"m{k}": i + k / 10 for k in range(metrics)} for i in range(runs)]
    start = time.perf_counter()
    for param_set, metric_set in zip(param_sets, metric_sets, strict=True):
        fluent.start_run()
        fluent.log_params(param_set)
        fluent.log_metrics(metric_set)
        fluent.end_run()
    elapsed = time.perf_counter() - start
    with sqlite3.connect(tool.db_path()) as con:
        counts = con.execute(
            "SELECT count(DISTINCT r.run_uuid), count(p.key) FROM runs r "
            "JOIN params p ON p.run_uuid = r.run_uuid "
            "WHERE r.experiment_id = ? AND r.status = 'FINISHED'",
            (int(experiment_id),),
        ).fetchone()
    _expect(counts == (runs, runs * params), f"store holds (runs, params) = {counts}")
    return tool.result(_rate(runs, elapsed), seconds=elapsed, runs=runs)


# -- run search -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What one run of the search data set logs."""

    name: str
    params: dict[str, str]
    final: dict[str, float]

    def metrics_at(self, step: int) -> dict[str, float]:
        """Metric values at ``step``: they improve by 0.05 a step and end at ``final``."""
        lag = (SEARCH_STEPS - 1 - step) * 0.05
        return {
            key: value - lag if key == "r2" else value + lag for key, value in self.final.items()
        }


def search_specs(runs: int, seed: int = SEARCH_SEED) -> list[RunSpec]:
    """The deterministic search data set; both tools store exactly these runs."""
    rng = random.Random(seed)
    specs = []
    for i in range(runs):
        rmse = rng.random()  # full precision: no ties in ORDER BY rmse
        specs.append(
            RunSpec(
                name=f"run-{i:05d}",
                params={
                    "model": SEARCH_MODELS[i % len(SEARCH_MODELS)],
                    "alpha": str(rng.choice((0.001, 0.01, 0.1, 1.0, 10.0))),
                    "max_depth": str(rng.randint(2, 12)),
                    "n_estimators": str(rng.choice((50, 100, 200, 400))),
                    "seed": str(i),
                },
                final={"rmse": rmse, "mae": rmse * 0.8, "r2": 1.0 - rmse},
            )
        )
    return specs


def expected_search(specs: Sequence[RunSpec], limit: int) -> list[str]:
    """Run names the benchmark search must return, in order (mirrors SEARCH_FILTER/ORDER_BY)."""
    hits = [s for s in specs if s.final["rmse"] < 0.5 and s.params["model"] == "ridge"]
    return [s.name for s in sorted(hits, key=lambda s: s.final["rmse"])[:limit]]


def search_populate(tool: Tool, runs: int, seed: int) -> Result:
    """Fill the default store with ``runs`` runs: one through the API, the rest cloned in SQL.

    The first run is logged through the tool's fluent API with default settings. Its rows in
    every table keyed by ``run_uuid`` (runs, tags, params, metrics, latest_metrics) are then
    copied once per remaining run, in one transaction, with that run's id, name, start time,
    param values and metric values: the rows the API would have written, without spending
    minutes (MLflow) going through it.
    """
    specs = search_specs(runs, seed)
    fluent = tool.fluent
    experiment_id = fluent.set_experiment("search-bench").experiment_id
    template = specs[0]
    with fluent.start_run(run_name=template.name) as run:
        fluent.log_params(template.params)
        for step in range(SEARCH_STEPS):
            fluent.log_metrics(template.metrics_at(step), step=step)
    tool.flush()
    start = time.perf_counter()
    rows = _clone_runs(tool.db_path(), run.info.run_id, template, specs[1:])
    elapsed = time.perf_counter() - start
    return tool.result(elapsed, experiment_id=str(experiment_id), rows=rows)


def _clone_runs(db: Path, template_id: str, template: RunSpec, clones: Sequence[RunSpec]) -> int:
    run_ids = [uuid.uuid4().hex for _ in clones]  # what both tools use as run ids
    con = sqlite3.connect(db)
    try:
        tables = [
            name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        inserted = 0
        with con:
            for table in tables:
                info = con.execute(f'PRAGMA table_info("{table}")').fetchall()
                names = [column[1] for column in info]
                if "run_uuid" not in names:
                    continue
                columns = [column[1] for column in info if not _is_rowid_alias(column, info)]
                quoted = ", ".join(f'"{c}"' for c in columns)
                rows = con.execute(
                    f'SELECT {quoted} FROM "{table}" WHERE run_uuid = ?', (template_id,)
                ).fetchall()
                rewrite = _row_rewriter(table, columns, template_id, template)
                copies = [
                    rewrite(row, spec, run_id, offset)
                    for offset, (spec, run_id) in enumerate(zip(clones, run_ids, strict=True), 1)
                    for row in rows
                ]
                marks = ", ".join("?" * len(columns))
                con.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})', copies)
                inserted += len(copies)
        return inserted
    finally:
        con.close()


def _is_rowid_alias(column: tuple[Any, ...], info: Sequence[tuple[Any, ...]]) -> bool:
    """An ``INTEGER PRIMARY KEY`` (SQLite fills it in), like Cairn's ``metrics.id``."""
    single_key = sum(1 for c in info if c[5]) == 1
    return bool(column[5]) and single_key and str(column[2]).upper() == "INTEGER"


def _row_rewriter(
    table: str, columns: Sequence[str], template_id: str, template: RunSpec
) -> Callable[[tuple[Any, ...], RunSpec, str, int], tuple[Any, ...]]:
    index = {name: i for i, name in enumerate(columns)}
    key_at, value_at, step_at = index.get("key"), index.get("value"), index.get("step")
    shifted = [i for name, i in index.items() if name in SHIFTED_TIME_COLUMNS]

    def rewrite(row: tuple[Any, ...], spec: RunSpec, run_id: str, offset: int) -> tuple[Any, ...]:
        out: list[Any] = [
            spec.name
            if cell == template.name
            else cell.replace(template_id, run_id)
            if isinstance(cell, str)
            else cell
            for cell in row
        ]
        for i in shifted:
            if out[i] is not None:
                out[i] += offset * 1000  # one second apart, like runs logged one by one
        if key_at is not None and value_at is not None:
            key = out[key_at]
            if table in PARAM_TABLES and key in spec.params:
                out[value_at] = spec.params[key]
            elif table in METRIC_TABLES and step_at is not None:
                out[value_at] = spec.metrics_at(out[step_at])[key]
        return tuple(out)

    return rewrite


def search(tool: Tool, experiment_id: str, runs: int, seed: int, repeats: int) -> Result:
    """The benchmark search: a cold first call, then the median of ``repeats`` warm ones."""
    fluent = tool.fluent

    def once(max_results: int = SEARCH_MAX_RESULTS) -> list[Any]:
        found: list[Any] = fluent.search_runs(
            experiment_ids=[experiment_id],
            filter_string=SEARCH_FILTER,
            order_by=[SEARCH_ORDER_BY],
            max_results=max_results,
            output_format="list",
        )
        return found

    start = time.perf_counter()
    first = once()
    cold = time.perf_counter() - start
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        found = once()
        samples.append(time.perf_counter() - start)
    names = [r.info.run_name for r in found]
    _expect(names == [r.info.run_name for r in first], "repeated searches disagree")
    matching = len(once(max_results=runs))  # untimed: how many runs match in all
    expected = expected_search(search_specs(runs, seed), SEARCH_MAX_RESULTS)
    return tool.result(
        statistics.median(samples),
        cold_s=cold,
        samples=samples,
        names=names,
        matching=matching,
        matches_expected=names == expected,
    )


# -- entry point ------------------------------------------------------------------------------


class CheckFailed(Exception):
    """A workload's read-back check failed: the figure would not mean what it claims."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


TASKS: dict[str, Callable[..., Result]] = {
    "log_metric": log_metric,
    "log_metrics": log_metrics,
    "log_batch": log_batch,
    "create_runs": create_runs,
    "search_populate": search_populate,
    "search": search,
}


def main(argv: Sequence[str]) -> None:
    if len(argv) != 4:
        raise SystemExit(__doc__)
    tool_name, task_name, params_json, result_path = argv
    task = TASKS.get(task_name)
    if task is None:
        raise SystemExit(f"unknown task {task_name!r}; expected one of {sorted(TASKS)}")
    params: dict[str, Any] = json.loads(params_json)
    result = task(Tool(tool_name), **params)
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])


# -- what the figures depend on (used by the drivers) ---------------------------------------


def installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def environment() -> dict[str, Any]:
    """What the figures depend on: versions, machine, load, and the Cairn source measured."""
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ":(top)src")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cairn": installed_version("cairn-ml"),
        "mlflow": installed_version("mlflow"),
        "cairn_commit": _git("rev-parse", "--short", "HEAD") + ("+uncommitted" if dirty else ""),
        "load_average_at_start": os.getloadavg(),
        "temp_dir": tempfile.gettempdir(),
    }


# -- reporting (used by the drivers) ----------------------------------------------------------


def figure(value: float, unit: str) -> str:
    """A measured value for the results table: seconds as ms or s, rates with their unit."""
    if unit == "s":
        return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"
    return f"{value:,.0f} {unit}"


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A Markdown table; the figure columns (Cairn, MLflow, speed-up) are right-aligned."""
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    right = {1, 2, 3}

    def fmt(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def render_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The ratio table for result dicts (``title``, ``cairn``, ``mlflow``, ``unit``, ``speedup``,
    ``target``, ``result``), as the model benchmarks return them; ``-`` where a figure is absent."""
    header = ("scenario", "Cairn", "MLflow", "speed-up", "target", "result")
    lines = []
    for row in rows:
        if row.get("result") == "ERROR" or row.get("cairn") is None:
            lines.append((row["title"], "-", "-", "-", row["target"], row.get("result", "ERROR")))
            continue
        mlflow = row.get("mlflow")
        lines.append(
            (
                row["title"],
                figure(row["cairn"], row["unit"]),
                "-" if mlflow is None else figure(mlflow, row["unit"]),
                "-" if row.get("speedup") is None else f"{row['speedup']:,.1f}x",
                row["target"],
                row["result"],
            )
        )
    return markdown_table(header, lines)

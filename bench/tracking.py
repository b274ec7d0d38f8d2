"""Cairn vs MLflow: the tracking benchmarks of the performance targets, run side by side.

    .venv/bin/python bench/tracking.py                  # every scenario, full sizes
    .venv/bin/python bench/tracking.py --quick          # smaller sizes, fewer repeats
    .venv/bin/python bench/tracking.py --only search --json results.json

Both tools are measured in the same invocation. Every sample runs in a fresh subprocess whose
working directory is a fresh temporary folder, so each tool starts cold on its default local
store and nothing (store, cache, open connection) carries over between tools or samples.
Workloads live in ``bench/_harness.py``; this driver starts them, alternates the tools
(Cairn first on even repeats, MLflow first on odd ones) and prints, per scenario, both figures,
the speed-up of Cairn over MLflow, the target speed-up and PASS/FAIL.

Exit status: 0 when every scenario passes, 1 when one misses its target or returns results
that do not match, 2 when one could not be measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py, beside this script: standard library only

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

HARNESS = Path(_harness.__file__).resolve()
BIN = Path(sys.executable).parent
TOOLS = _harness.TOOLS
WORKER_TIMEOUT_S = 1800
# Environment variables of either tool are dropped from the inherited environment, so both run
# with default settings; a scenario adds back what it measures (CAIRN_ASYNC_LOGGING=false).
# MLflow's usage telemetry is switched off: it only adds background network traffic to MLflow's
# side (a handicap for MLflow, not a store setting) and a benchmark should not phone home.
TOOL_ENV_PREFIXES = ("CAIRN_", "MLFLOW_")
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true"}
# Imports are measured as users see them, from bytecode caches: PYTHONDONTWRITEBYTECODE (set in
# some sandboxes and CI images) would make every process recompile both packages from source.
# The caches go to a folder of this invocation (PYTHONPYCACHEPREFIX), not into the source tree.
DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


class BenchError(Exception):
    """A measurement could not be taken (a subprocess failed, a check did not hold)."""


# -- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """Both tools' figures for one scenario, plus what the table notes should say."""

    cairn: float
    mlflow: float
    method: str
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    unit: str  # "s" (lower is better) or a rate such as "calls/s" (higher is better)
    target: float  # the speed-up of Cairn over MLflow that passes
    measure: Callable[[Bench], Outcome]

    @property
    def higher_is_better(self) -> bool:
        return self.unit != "s"

    def speedup(self, outcome: Outcome) -> float:
        """How many times faster Cairn is: a rate ratio, or MLflow's time over Cairn's."""
        if self.higher_is_better:
            return outcome.cairn / outcome.mlflow
        return outcome.mlflow / outcome.cairn


@dataclass(slots=True)
class Row:
    scenario: Scenario
    outcome: Outcome | None = None
    error: str | None = None
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after

    @property
    def busy(self) -> bool:
        """The machine ran other work too: more runnable processes than CPUs."""
        return max(self.load) > (os.cpu_count() or 1)

    @property
    def verdict(self) -> str:
        if self.outcome is None:
            return "ERROR"
        if self.outcome.problems:
            return "INVALID"
        return "PASS" if self.scenario.speedup(self.outcome) >= self.scenario.target else "FAIL"


# -- running things ---------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(TOOL_ENV_PREFIXES) and k not in DROPPED_ENV
    }


@contextlib.contextmanager
def _fresh_dir(tool: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _tool_order(repeat: int) -> tuple[str, ...]:
    """Alternate which tool goes first, so drift in machine load hits both alike."""
    return TOOLS if repeat % 2 == 0 else TOOLS[::-1]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Bench:
    """Options of this invocation and the helpers scenarios measure with."""

    def __init__(self, quick: bool, repeats: int | None, verbose: bool, pycache: Path) -> None:
        self.quick = quick
        self.pycache = pycache
        self.repeats_override = repeats
        self.verbose = verbose

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def repeats(self, full: int, quick: int) -> int:
        return self.repeats_override or self.size(full, quick)

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"    {message}", file=sys.stderr, flush=True)

    def env(self, tool: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = _clean_env()
        env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        if tool == "mlflow":
            env.update(MLFLOW_ENV)
        env.update(extra or {})
        return env

    def time_command(self, tool: str, command: Sequence[str]) -> float:
        """Wall time of one command, started in a fresh working directory."""
        with _fresh_dir(tool) as cwd:
            start = time.perf_counter()
            proc = subprocess.run(
                command,
                cwd=cwd,
                env=self.env(tool),
                capture_output=True,
                text=True,
                timeout=WORKER_TIMEOUT_S,
                check=False,
            )
            elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(
                f"`{' '.join(command)}` exited {proc.returncode}:\n{_tail(proc.stderr)}"
            )
        return elapsed

    def time_commands(
        self, commands: Mapping[str, Sequence[str]], repeats: int, warmups: int = 1
    ) -> dict[str, list[float]]:
        """``repeats`` wall times per command after ``warmups`` untimed runs (.pyc, page cache)."""
        samples: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for repeat in range(-warmups, repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                elapsed = self.time_command(name, commands[name])
                if repeat >= 0:
                    samples[name].append(elapsed)
                self.log(f"{name}: {elapsed:.3f} s" + (" (warm-up)" if repeat < 0 else ""))
        return samples

    def worker(
        self,
        tool: str,
        task: str,
        params: Mapping[str, Any],
        cwd: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run one ``_harness`` task in a subprocess started in ``cwd``; return its result."""
        fd, result_name = tempfile.mkstemp(prefix="bench-result-", suffix=".json")
        os.close(fd)
        result_path = Path(result_name)
        command = [sys.executable, str(HARNESS), tool, task, json.dumps(params), str(result_path)]
        try:
            proc = subprocess.run(
                command,
                cwd=cwd,
                env=self.env(tool, extra_env),
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

    def workers(
        self,
        task: str,
        params: Mapping[str, Any],
        repeats: int,
        cairn_env: Mapping[str, str] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """``repeats`` samples of ``task`` per tool, each in its own process and directory."""
        results: dict[str, list[dict[str, Any]]] = {tool: [] for tool in TOOLS}
        for repeat in range(repeats):
            for tool in _tool_order(repeat):
                with _fresh_dir(tool) as cwd:
                    extra = cairn_env if tool == "cairn" else None
                    results[tool].append(self.worker(tool, task, params, cwd, extra))
        return results


def _commands(repeats: int) -> str:
    return "one sample" if repeats == 1 else f"median of {repeats}"


def _processes(repeats: int) -> str:
    return "one process each" if repeats == 1 else f"median of {repeats} processes each"


def _medians(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[float, float]:
    return (
        statistics.median(r["value"] for r in results["cairn"]),
        statistics.median(r["value"] for r in results["mlflow"]),
    )


def _samples(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    return {f"{tool}_samples": [r["value"] for r in runs] for tool, runs in results.items()} | {
        "stores": {tool: runs[0]["store"] for tool, runs in results.items() if runs}
    }


# -- scenarios --------------------------------------------------------------------------------


def measure_import(bench: Bench) -> Outcome:
    repeats = bench.repeats(7, 3)
    python = sys.executable
    samples = bench.time_commands(
        {
            "cairn": [python, "-c", "import cairn"],
            "mlflow": [python, "-c", "import mlflow"],
            "python": [python, "-c", "pass"],
        },
        repeats,
    )
    return Outcome(
        statistics.median(samples["cairn"]),
        statistics.median(samples["mlflow"]),
        f"wall time of the whole process, {_commands(repeats)} after 1 warm-up; "
        f"`python -c pass` alone takes {statistics.median(samples['python']):.3f} s",
        {f"{name}_samples": values for name, values in samples.items()},
    )


def measure_cli(bench: Bench) -> Outcome:
    repeats = bench.repeats(5, 3)
    samples = bench.time_commands(
        {"cairn": [str(BIN / "cairn"), "--help"], "mlflow": [str(BIN / "mlflow"), "--version"]},
        repeats,
    )
    return Outcome(
        statistics.median(samples["cairn"]),
        statistics.median(samples["mlflow"]),
        f"`cairn --help` vs `mlflow --version`, {_commands(repeats)} after 1 warm-up",
        {f"{name}_samples": values for name, values in samples.items()},
    )


def _measure_log_metric(bench: Bench, synchronous: bool) -> Outcome:
    calls = bench.size(2_000, 500)
    repeats = bench.repeats(3, 1)
    cairn_env = {"CAIRN_ASYNC_LOGGING": "false"} if synchronous else None
    results = bench.workers("log_metric", {"calls": calls}, repeats, cairn_env)
    cairn, mlflow = _medians(results)
    mode = "CAIRN_ASYNC_LOGGING=false" if synchronous else "default (async) Cairn"
    return Outcome(
        cairn,
        mlflow,
        f"{calls:,} log_metric calls in one run + flush, {mode}, MLflow default; "
        + _processes(repeats),
        _samples(results),
    )


def measure_log_metric(bench: Bench) -> Outcome:
    return _measure_log_metric(bench, synchronous=False)


def measure_log_metric_sync(bench: Bench) -> Outcome:
    return _measure_log_metric(bench, synchronous=True)


def measure_log_batch(bench: Bench) -> Outcome:
    metrics = bench.size(10_000, 2_000)
    repeats = bench.repeats(3, 1)
    results = bench.workers("log_batch", {"metrics": metrics, "keys": 10}, repeats)
    cairn, mlflow = _medians(results)
    return Outcome(
        cairn,
        mlflow,
        f"one client.log_batch of {metrics:,} metrics (10 keys x {metrics // 10:,} steps); "
        + _processes(repeats),
        _samples(results),
    )


def measure_log_metrics(bench: Bench) -> Outcome:
    steps = bench.size(100, 20)
    repeats = bench.repeats(3, 1)
    results = bench.workers("log_metrics", {"steps": steps, "keys": 100}, repeats)
    cairn, mlflow = _medians(results)
    return Outcome(
        cairn,
        mlflow,
        f"{steps} fluent log_metrics calls of 100 keys each + flush, default settings; "
        + _processes(repeats),
        _samples(results),
    )


def measure_runs(bench: Bench) -> Outcome:
    runs = bench.size(1_000, 100)
    repeats = bench.repeats(3, 1)
    params = {"runs": runs, "params": 5, "metrics": 5}
    results = bench.workers("create_runs", params, repeats)
    cairn, mlflow = _medians(results)
    return Outcome(
        cairn,
        mlflow,
        f"{runs:,} x (start_run, log_params(5), log_metrics(5), end_run), default settings; "
        + _processes(repeats),
        _samples(results),
    )


def measure_search(bench: Bench) -> Outcome:
    runs = bench.size(10_000, 2_000)
    repeats = bench.repeats(5, 3)
    seed = _harness.SEARCH_SEED
    results: dict[str, dict[str, Any]] = {}
    populate: dict[str, dict[str, Any]] = {}
    for tool in TOOLS:
        with _fresh_dir(tool) as cwd:
            populate[tool] = bench.worker(
                tool, "search_populate", {"runs": runs, "seed": seed}, cwd
            )
            params = {
                "experiment_id": populate[tool]["experiment_id"],
                "runs": runs,
                "seed": seed,
                "repeats": repeats,
            }
            results[tool] = bench.worker(tool, "search", params, cwd)
    expected = _harness.expected_search(
        _harness.search_specs(runs, seed), _harness.SEARCH_MAX_RESULTS
    )
    problems = [
        f"{tool} returned {len(r['names'])} runs that differ from the expected {len(expected)}"
        for tool, r in results.items()
        if not r["matches_expected"]
    ]
    if results["cairn"]["matching"] != results["mlflow"]["matching"]:
        problems.append(
            f"total matches differ: Cairn {results['cairn']['matching']}, "
            f"MLflow {results['mlflow']['matching']}"
        )
    return Outcome(
        results["cairn"]["value"],
        results["mlflow"]["value"],
        f"{runs:,} runs (1 via the API + clones of its rows), filter "
        f'"{_harness.SEARCH_FILTER}", order by {_harness.SEARCH_ORDER_BY}, '
        f"max_results={_harness.SEARCH_MAX_RESULTS}; median of {repeats} after a cold first "
        f"call (cold: Cairn {results['cairn']['cold_s']:.3f} s, "
        f"MLflow {results['mlflow']['cold_s']:.3f} s); "
        + (
            "RESULTS DIFFER"
            if problems
            else f"both return the same {len(expected)} runs in the expected order "
            f"({results['cairn']['matching']:,} match in all)"
        ),
        {
            "cairn_cold_s": results["cairn"]["cold_s"],
            "mlflow_cold_s": results["mlflow"]["cold_s"],
            "cairn_samples": results["cairn"]["samples"],
            "mlflow_samples": results["mlflow"]["samples"],
            "returned": {tool: len(r["names"]) for tool, r in results.items()},
            "matching": {tool: r["matching"] for tool, r in results.items()},
            "populate_clone_s": {tool: p["value"] for tool, p in populate.items()},
            "rows_cloned": {tool: p["rows"] for tool, p in populate.items()},
            "stores": {tool: r["store"] for tool, r in results.items()},
        },
        problems,
    )


SCENARIOS = (
    Scenario("import", "import time", "s", 10, measure_import),
    Scenario("cli", "CLI start-up", "s", 10, measure_cli),
    Scenario("log_metric", "log_metric (async default)", "calls/s", 20, measure_log_metric),
    Scenario("log_metric_sync", "log_metric (synchronous)", "calls/s", 3, measure_log_metric_sync),
    Scenario("log_batch", "log_batch", "metrics/s", 5, measure_log_batch),
    Scenario("log_metrics", "log_metrics (fluent batches)", "metrics/s", 5, measure_log_metrics),
    Scenario("runs", "create runs", "runs/s", 10, measure_runs),
    Scenario("search", "search_runs", "s", 10, measure_search),
)


# -- reporting --------------------------------------------------------------------------------


def render_table(rows: Sequence[Row]) -> str:
    header = ("scenario", "Cairn", "MLflow", "speed-up", "target", "result")
    lines: list[tuple[str, ...]] = []
    for row in rows:
        scenario, outcome = row.scenario, row.outcome
        target = f">= {scenario.target:g}x"
        if outcome is None:
            lines.append((scenario.title, "-", "-", "-", target, row.verdict))
            continue
        lines.append(
            (
                scenario.title,
                _harness.figure(outcome.cairn, scenario.unit),
                _harness.figure(outcome.mlflow, scenario.unit),
                f"{scenario.speedup(outcome):,.1f}x",
                target,
                row.verdict,
            )
        )
    return _harness.markdown_table(header, lines)


def render_notes(rows: Sequence[Row]) -> str:
    notes = []
    for row in rows:
        if row.outcome is not None:
            notes.append(f"- {row.scenario.name}: {row.outcome.method}")
            notes.extend(f"  ! {problem}" for problem in row.outcome.problems)
            if row.busy:
                notes.append(
                    f"  ! the machine was busy (load average {row.load[0]:.1f} -> "
                    f"{row.load[1]:.1f} on {os.cpu_count()} CPUs): these figures are noisy"
                )
        else:
            notes.append(
                f"- {row.scenario.name}: ERROR\n    " + (row.error or "").replace("\n", "\n    ")
            )
    return "\n".join(notes)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(
        description="Benchmark Cairn against MLflow, side by side.",
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-sample progress")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def run_scenarios(bench: Bench, only: Sequence[str] | None) -> list[Row]:
    rows = []
    for scenario in SCENARIOS:
        if only and scenario.name not in only:
            continue
        print(f"[{scenario.name}] {scenario.title} ...", file=sys.stderr, flush=True)
        row = Row(scenario)
        before = os.getloadavg()[0]
        try:
            row.outcome = scenario.measure(bench)
        except (BenchError, subprocess.TimeoutExpired) as exc:
            row.error = str(exc)
        row.load = (before, os.getloadavg()[0])
        rows.append(row)
        if row.outcome is not None:
            print(
                f"    => Cairn {_harness.figure(row.outcome.cairn, scenario.unit)}, MLflow "
                f"{_harness.figure(row.outcome.mlflow, scenario.unit)}: {row.verdict}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def to_json(rows: Sequence[Row], env: Mapping[str, Any], quick: bool) -> dict[str, Any]:
    scenarios = []
    for row in rows:
        entry: dict[str, Any] = {
            "name": row.scenario.name,
            "title": row.scenario.title,
            "unit": row.scenario.unit,
            "target_speedup": row.scenario.target,
            "result": row.verdict,
            "error": row.error,
            "load_average": row.load,
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
    return {"environment": dict(env), "quick": quick, "scenarios": scenarios}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool, distribution in zip(TOOLS, ("cairn-ml", "mlflow"), strict=True):
        if _harness.installed_version(distribution) == "not installed":
            print(
                f"{tool} is not installed for {sys.executable}; run scripts/bench.sh",
                file=sys.stderr,
            )
            return 2
    env = _harness.environment()
    print(
        f"Cairn {env['cairn']} ({env['cairn_commit'] or 'no git'}) vs MLflow {env['mlflow']} | "
        f"Python {env['python']} | {env['cpus']} CPUs | "
        f"load {env['load_average_at_start'][0]:.2f} | {'quick' if args.quick else 'full'} sizes",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        bench = Bench(args.quick, args.repeats, not args.quiet, Path(pycache))
        rows = run_scenarios(bench, args.only)
    print()
    print(render_table(rows))
    print()
    print(render_notes(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(rows, env, args.quick), indent=2) + "\n")
    verdicts = {row.verdict for row in rows}
    if "ERROR" in verdicts:
        return 2
    return 1 if verdicts & {"FAIL", "INVALID"} else 0


if __name__ == "__main__":
    sys.exit(main())

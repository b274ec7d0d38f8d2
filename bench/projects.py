"""Cairn vs MLflow: running a project whose environment is already built.

    .venv/bin/python bench/projects.py                 # 7 timed runs per tool
    .venv/bin/python bench/projects.py --quick --json results.json

Both tools run the same project (an ``MLproject`` with ``python_env.yaml`` asking for this
Python and ``pyyaml``; its command parses ``--alpha`` and imports yaml) in the same invocation:
``cairn run`` with its uv environment manager, ``mlflow run --env-manager virtualenv`` (pyenv
+ venv + pip). The first run of each builds its environment (reported, not the target); then
runs alternate between the tools (Cairn first on even repeats). The project's command alone
is timed with each tool's environment interpreter, and a tool's *overhead* is its median run
time minus that median: the target is Cairn's overhead under 1 s.

Every process gets the same clean environment (no ``CAIRN_*``/``MLFLOW_*`` variables, MLflow
telemetry off), a working directory of its own holding the tool's default store, and a cache
folder of its own (``CAIRN_HOME``, ``MLFLOW_ENV_ROOT``) inside this invocation's temp folder.
Afterwards each store is read back: every run must be FINISHED with ``alpha`` recorded, and each
tool must have built exactly one environment.

Exit status: 0 when the target holds, 1 when it does not, 2 when something could not be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py, beside this script: standard library only

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

BIN = Path(sys.executable).parent
TOOLS = _harness.TOOLS
TIMEOUT_S = 1800
OVERHEAD_TARGET_S = 1.0
TOOL_ENV_PREFIXES = ("CAIRN_", "MLFLOW_")
DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "VIRTUAL_ENV")

MLPROJECT = """\
name: bench
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
    command: "python train.py --alpha {alpha}"
"""
TRAIN_PY = """\
import argparse

import yaml

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float)
args = parser.parse_args()
print(yaml.safe_dump({"alpha": args.alpha}).strip())
"""


class BenchError(Exception):
    """A measurement could not be taken, or a read-back check failed."""


class Workspace:
    """This invocation's folders: one project copy, store and cache per tool."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pycache = root / "pycache"
        python = platform.python_version()
        for tool in TOOLS:
            project = self.project(tool)
            project.mkdir(parents=True)
            (project / "MLproject").write_text(MLPROJECT)
            (project / "python_env.yaml").write_text(
                f'python: "{python}"\ndependencies:\n  - pyyaml\n'
            )
            (project / "train.py").write_text(TRAIN_PY)
            self.work(tool).mkdir()
            self.cache(tool).mkdir()

    def project(self, tool: str) -> Path:
        return self.root / f"project-{tool}"

    def work(self, tool: str) -> Path:
        return self.root / f"work-{tool}"

    def cache(self, tool: str) -> Path:
        return self.root / f"cache-{tool}"

    def env(self, tool: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(TOOL_ENV_PREFIXES) and k not in DROPPED_ENV
        }
        env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        if tool == "cairn":
            env["CAIRN_HOME"] = str(self.cache(tool))
        else:
            env["MLFLOW_ENV_ROOT"] = str(self.cache(tool))
            env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        return env

    def run_command(self, tool: str, alpha: float) -> list[str]:
        project, param = str(self.project(tool)), f"alpha={alpha}"
        if tool == "cairn":
            return [str(BIN / "cairn"), "run", project, "-P", param, "--env-manager", "uv"]
        return [str(BIN / "mlflow"), "run", project, "-P", param, "--env-manager", "virtualenv"]

    def env_python(self, tool: str) -> Path:
        """The interpreter of the one environment the tool built."""
        pythons = sorted(self.cache(tool).glob("**/bin/python"))
        if len(pythons) != 1:
            raise BenchError(f"{tool} built {len(pythons)} environments, expected exactly one")
        return pythons[0]


def _timed(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BenchError(f"`{' '.join(command)}` exited {proc.returncode}:\n{tail}")
    return elapsed


def _log(verbose: bool, message: str) -> None:
    if verbose:
        print(f"    {message}", file=sys.stderr, flush=True)


def measure(ws: Workspace, repeats: int, verbose: bool) -> dict[str, Any]:
    first: dict[str, float] = {}
    for tool in TOOLS:
        first[tool] = _timed(ws.run_command(tool, 0.5), ws.work(tool), ws.env(tool))
        _log(verbose, f"{tool}: first run (builds the environment) {first[tool]:.2f} s")
    runs: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    alone: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    for repeat in range(repeats):
        order = TOOLS if repeat % 2 == 0 else TOOLS[::-1]
        for tool in order:
            command = [str(ws.env_python(tool)), "train.py", "--alpha", "0.5"]
            alone[tool].append(_timed(command, ws.project(tool), ws.env(tool)))
            runs[tool].append(_timed(ws.run_command(tool, 0.5), ws.work(tool), ws.env(tool)))
            _log(
                verbose,
                f"{tool}: run {runs[tool][-1]:.3f} s, command alone {alone[tool][-1]:.3f} s",
            )
    check_stores(ws, repeats + 1)
    medians = {tool: statistics.median(runs[tool]) for tool in TOOLS}
    commands = {tool: statistics.median(alone[tool]) for tool in TOOLS}
    return {
        "first_run_s": first,
        "run_s": medians,
        "command_alone_s": commands,
        "overhead_s": {tool: medians[tool] - commands[tool] for tool in TOOLS},
        "run_samples": runs,
        "command_alone_samples": alone,
    }


def check_stores(ws: Workspace, expected: int) -> None:
    """Every run reached its store FINISHED, with alpha=0.5 recorded."""
    listing = subprocess.run(
        [str(BIN / "cairn"), "runs", "list", "--json", "-n", "1000"],
        cwd=ws.work("cairn"),
        env=ws.env("cairn"),
        capture_output=True,
        text=True,
        check=True,
    )
    cairn_runs = json.loads(listing.stdout)["runs"]
    states = [(r["info"]["status"], r["data"]["params"].get("alpha")) for r in cairn_runs]
    if states != [("FINISHED", "0.5")] * expected:
        raise BenchError(f"Cairn store holds {states}, expected {expected} finished runs")
    with sqlite3.connect(ws.work("mlflow") / "mlflow.db") as con:
        rows = con.execute(
            "SELECT r.status, p.value FROM runs r LEFT JOIN params p "
            "ON p.run_uuid = r.run_uuid AND p.key = 'alpha'"
        ).fetchall()
    if [tuple(row) for row in rows] != [("FINISHED", "0.5")] * expected:
        raise BenchError(f"MLflow store holds {rows}, expected {expected} finished runs")
    for tool in TOOLS:
        ws.env_python(tool)  # exactly one environment each: later runs reused it


def render(result: Mapping[str, Any]) -> tuple[str, bool]:
    run, alone, over, first = (
        result["run_s"],
        result["command_alone_s"],
        result["overhead_s"],
        result["first_run_s"],
    )
    passed = over["cairn"] < OVERHEAD_TARGET_S
    fig = _harness.figure
    lines = [
        (
            "run, environment cached",
            fig(run["cairn"], "s"),
            fig(run["mlflow"], "s"),
            f"{run['mlflow'] / run['cairn']:,.1f}x",
            "-",
            "-",
        ),
        (
            "overhead on top of the command",
            fig(over["cairn"], "s"),
            fig(over["mlflow"], "s"),
            f"{over['mlflow'] / max(over['cairn'], 1e-9):,.1f}x",
            f"Cairn < {OVERHEAD_TARGET_S:g} s",
            "PASS" if passed else "FAIL",
        ),
        (
            "the command alone",
            fig(alone["cairn"], "s"),
            fig(alone["mlflow"], "s"),
            "-",
            "-",
            "-",
        ),
        (
            "first run (builds the env)",
            fig(first["cairn"], "s"),
            fig(first["mlflow"], "s"),
            f"{first['mlflow'] / first['cairn']:,.1f}x",
            "-",
            "-",
        ),
    ]
    header = ("scenario", "Cairn", "MLflow", "speed-up", "target", "result")
    return _harness.markdown_table(header, lines), passed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cairn run vs mlflow run, environment cached")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per tool (7)")
    parser.add_argument("--quick", action="store_true", help="3 timed runs per tool")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-sample progress")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    env = _harness.environment()
    print(
        f"Cairn {env['cairn']} ({env['cairn_commit'] or 'no git'}) vs MLflow {env['mlflow']} | "
        f"Python {env['python']} | {env['cpus']} CPUs | load {env['load_average_at_start'][0]:.2f}"
        f" | {repeats} timed runs each",
        flush=True,
    )
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-projects-") as root:
        try:
            result = measure(Workspace(Path(root)), repeats, not args.quiet)
        except (BenchError, subprocess.SubprocessError) as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 2
    load = (load_before, os.getloadavg()[0])
    table, passed = render(result)
    print()
    print(table)
    print()
    print(
        f"- medians of {repeats} runs per tool after one untimed first run; overhead = median "
        "`cairn run`/`mlflow run` wall time minus the median of the command alone "
        "(`<env python> train.py --alpha 0.5`)"
    )
    if max(load) > (os.cpu_count() or 1):
        print(f"  ! the machine was busy (load {load[0]:.1f} -> {load[1]:.1f}): figures are noisy")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"environment": env, "repeats": repeats, "load_average": load, **result}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

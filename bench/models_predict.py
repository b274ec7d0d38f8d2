"""``cairn models predict`` vs ``mlflow models predict --env-manager local``: batch scoring.

    .venv/bin/python bench/models_predict.py            # full repeats
    .venv/bin/python bench/models_predict.py --quick    # fewer repeats
    .venv/bin/python bench/models_predict.py --json results.json

Both commands score the same 100,000-row CSV (10 numeric features) with the same model folder:
a scikit-learn StandardScaler + Ridge pipeline saved once by ``cairn.sklearn.save_model``, whose
``MLmodel`` MLflow reads too. Cairn writes CSV, MLflow its JSON (``{"predictions": [...]}``);
the two outputs are compared afterwards. Figures:

- ``wall``: the whole command, process start to exit, as a user runs it; median of N runs
  after one untimed run each (it writes the bytecode caches). Target: Cairn takes at most a
  third of MLflow's time.
- ``floor``: read + predict + write inside one warm process that has loaded both tools and
  the model, the two tools' runs interleaved, median of N: Cairn's ``predict_file``; for
  MLflow the three steps ``mlflow models predict`` runs (``parse_csv_input``,
  ``PyFuncModel.predict``, ``predictions_to_json``). Start-up is ``wall`` minus ``floor``.
- ``help``: ``models predict --help``, the CLI's own start-up.

Every process starts in a fresh temporary directory with both tools' variables dropped from
its environment (as in ``bench/tracking.py``), MLflow's telemetry off and bytecode caches in a
folder of this invocation. ``run(quick)`` returns one dict per figure (the shape of
``bench/models_serve.py``'s); ``bench/models.py`` collects them. Run as a script, this module
prints the table (CPU seconds, steadier than wall time on a busy machine, are in the notes
and the JSON). ``--floor-worker`` is the in-process measurement, run in a subprocess.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
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
ROWS = 100_000
FEATURES = 10
SEED = 20240611
TIMEOUT_S = 600
TOOL_ENV_PREFIXES = ("CAIRN_", "MLFLOW_")
DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


class BenchError(Exception):
    """A measurement could not be taken (a command failed, the outputs disagree)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    target: str
    speedup: float  # the speed-up of Cairn over MLflow that passes


SCENARIOS = {
    "wall": Scenario("predict_wall", f"models predict, {ROWS:,}-row CSV", ">= 3x", 3.0),
    "floor": Scenario("predict_floor", "read + predict + write, in process", ">= 1x", 1.0),
    "help": Scenario("predict_help", "models predict --help", ">= 10x", 10.0),
}


@dataclass(frozen=True)
class Workload:
    model: Path
    csv: Path


def build_workload(folder: Path) -> Workload:
    """The model folder and the CSV both tools score."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import cairn.sklearn

    rng = np.random.default_rng(SEED)
    columns = [f"f{i}" for i in range(FEATURES)]
    train = pd.DataFrame(rng.normal(size=(1_000, FEATURES)), columns=columns)
    weights = rng.normal(size=FEATURES)
    model = make_pipeline(StandardScaler(), Ridge()).fit(train, train.to_numpy() @ weights)
    cairn.sklearn.save_model(model, folder / "model", input_example=train[:5])
    data = pd.DataFrame(rng.normal(size=(ROWS, FEATURES)), columns=columns)
    data.to_csv(folder / "input.csv", index=False)
    return Workload(folder / "model", folder / "input.csv")


def tool_env(pycache: Path) -> dict[str, str]:
    """Default settings for both tools: their variables dropped, bytecode cached per run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(TOOL_ENV_PREFIXES) and k not in DROPPED_ENV
    }
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def predict_command(tool: str, workload: Workload, output: Path) -> list[str]:
    common = ["models", "predict", "-m", str(workload.model), "-i", str(workload.csv)]
    if tool == "cairn":
        return [str(BIN / "cairn"), *common, "-o", str(output), "--no-progress"]
    return [str(BIN / "mlflow"), *common, "-o", str(output), "-t", "csv", "--env-manager", "local"]


@contextlib.contextmanager
def _fresh_dir(tool: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Samples:
    """Wall and CPU seconds (user + system, children included) of each run of a command."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def _run(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one command: on a busy machine CPU time drifts less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BenchError(f"`{' '.join(command)}` exited {proc.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _time_commands(
    label: str,
    commands: dict[str, list[str]],
    env: dict[str, str],
    repeats: int,
    log: Callable[[str], None],
) -> dict[str, Samples]:
    """``repeats`` runs of each tool's command after one untimed run each (bytecode caches),
    alternating which tool goes first so drift in machine load hits both alike."""
    samples = {tool: Samples() for tool in TOOLS}
    for repeat in range(-1, repeats):
        for tool in TOOLS if repeat % 2 == 0 else TOOLS[::-1]:
            with _fresh_dir(tool) as cwd:
                wall, cpu = _run(commands[tool], env, cwd)
            if repeat >= 0:
                samples[tool].wall.append(wall)
                samples[tool].cpu.append(cpu)
            log(
                f"{tool} {label}: {wall:.3f} s wall, {cpu:.3f} s CPU"
                + (" (warm-up)" if repeat < 0 else "")
            )
    return samples


def measure_wall(
    workload: Workload, env: dict[str, str], repeats: int, log: Callable[[str], None]
) -> tuple[dict[str, Samples], dict[str, Path]]:
    """Times of the two ``models predict`` commands; the paths of their outputs."""
    outputs = {
        "cairn": workload.csv.with_name("cairn-out.csv"),
        "mlflow": workload.csv.with_name("mlflow-out.json"),
    }
    commands = {tool: predict_command(tool, workload, outputs[tool]) for tool in TOOLS}
    return _time_commands("models predict", commands, env, repeats, log), outputs


def measure_help(
    env: dict[str, str], repeats: int, log: Callable[[str], None]
) -> dict[str, Samples]:
    commands = {tool: [str(BIN / tool), "models", "predict", "--help"] for tool in TOOLS}
    return _time_commands("models predict --help", commands, env, repeats, log)


def measure_floor(
    workload: Workload, env: dict[str, str], repeats: int, log: Callable[[str], None]
) -> dict[str, Samples]:
    """Both tools' data path in one subprocess, runs interleaved so load drift hits both."""
    with _fresh_dir("floor") as cwd:
        result = cwd / "result.json"
        script = str(Path(__file__).resolve())
        args = [str(workload.model), str(workload.csv), str(repeats), str(result)]
        _run([sys.executable, script, "--floor-worker", *args], env, cwd)
        raw = json.loads(result.read_text())
    samples = {tool: Samples(raw[tool]["wall"], raw[tool]["cpu"]) for tool in TOOLS}
    for tool in TOOLS:
        log(
            f"{tool} read + predict + write: {statistics.median(samples[tool].wall) * 1000:.1f} "
            f"ms wall, {statistics.median(samples[tool].cpu) * 1000:.1f} ms CPU"
        )
    return samples


def floor_worker(model: str, csv: str, repeats: int, result: str) -> None:
    """Load both tools and the model in this process, then time each tool's read + predict +
    write ``repeats`` times, alternating which goes first, after one untimed run each."""
    import mlflow.pyfunc
    from mlflow.pyfunc.scoring_server import parse_csv_input, predictions_to_json

    import cairn.pyfunc
    from cairn.models.batch import predict_file

    folder = Path(result).parent
    cairn_model = cairn.pyfunc.load_model(model)
    mlflow_model = mlflow.pyfunc.load_model(model)

    def cairn_once() -> None:
        predict_file(cairn_model, csv, folder / "out.csv")

    def mlflow_once() -> None:
        frame = parse_csv_input(csv)
        predictions = mlflow_model.predict(frame)
        with open(folder / "out.json", "w") as handle:
            predictions_to_json(predictions, handle)

    runs = {"cairn": cairn_once, "mlflow": mlflow_once}
    samples: dict[str, dict[str, list[float]]] = {t: {"wall": [], "cpu": []} for t in TOOLS}
    for repeat in range(-1, repeats):
        for tool in TOOLS if repeat % 2 == 0 else TOOLS[::-1]:
            cpu = time.process_time()
            start = time.perf_counter()
            runs[tool]()
            if repeat >= 0:
                samples[tool]["wall"].append(time.perf_counter() - start)
                samples[tool]["cpu"].append(time.process_time() - cpu)
    Path(result).write_text(json.dumps(samples))


def compare_outputs(outputs: dict[str, Path]) -> list[str]:
    """Problems, if the two tools' predictions differ (they read the CSV with different
    parsers, so the last digit may)."""
    import numpy as np
    import pyarrow.csv as pcsv

    cairn = pcsv.read_csv(outputs["cairn"]).column("prediction").to_numpy()
    mlflow = np.asarray(json.loads(outputs["mlflow"].read_text())["predictions"], dtype=float)
    if cairn.shape != (ROWS,) or mlflow.shape != (ROWS,):
        return [f"row counts differ: Cairn {cairn.shape}, MLflow {mlflow.shape}"]
    if not np.allclose(cairn, mlflow, rtol=1e-9, atol=0):
        worst = float(np.max(np.abs(cairn - mlflow)))
        return [f"predictions differ (largest difference {worst:g})"]
    return []


def _row(
    scenario: Scenario,
    samples: dict[str, list[float]],
    method: str,
    problems: Sequence[str] = (),
    cpu: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    cairn = statistics.median(samples["cairn"])
    mlflow = statistics.median(samples["mlflow"])
    details: dict[str, Any] = {f"{tool}_samples": values for tool, values in samples.items()}
    if cpu is not None:
        # CPU seconds drift less than wall time when other work shares the machine.
        details |= {f"{tool}_cpu_samples": values for tool, values in cpu.items()}
        cpu_s = {tool: statistics.median(values) for tool, values in cpu.items()}
        details |= {f"{tool}_cpu_s": value for tool, value in cpu_s.items()}
        method += (
            f"; CPU time (user + system): Cairn {_harness.figure(cpu_s['cairn'], 's')}, MLflow "
            f"{_harness.figure(cpu_s['mlflow'], 's')}, {cpu_s['mlflow'] / cpu_s['cairn']:.1f}x"
        )
    speedup = mlflow / cairn if cairn else float("inf")
    passed = speedup >= scenario.speedup
    result = "INVALID" if problems else "PASS" if passed else "FAIL"
    return {
        "name": scenario.name,
        "title": scenario.title,
        "unit": "s",
        "target": scenario.target,
        "cairn": cairn,
        "mlflow": mlflow,
        "speedup": speedup,
        "result": result,
        "method": method,
        "details": details,
        "problems": list(problems),
        "error": None,
    }


def _error_rows(error: str) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "title": s.title,
            "unit": "s",
            "target": s.target,
            "result": "ERROR",
            "error": error,
        }
        for s in SCENARIOS.values()
    ]


def run(quick: bool = False, verbose: bool = True) -> list[dict[str, Any]]:
    """Measure both tools on the same model and file; one result dict per figure."""

    def log(message: str) -> None:
        if verbose:
            print(f"    {message}", file=sys.stderr, flush=True)

    for distribution in ("cairn-ml", "mlflow"):
        if _harness.installed_version(distribution) == "not installed":
            return _error_rows(f"{distribution} is not installed for {sys.executable}")
    repeats = 2 if quick else 5
    try:
        with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
            work = Path(tmp)
            workload = build_workload(work)
            env = tool_env(work / "pycache")
            wall, outputs = measure_wall(workload, env, repeats, log)
            problems = compare_outputs(outputs)
            floor = measure_floor(workload, env, 3 if quick else 7, log)
            help_samples = measure_help(env, repeats, log)
    except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
        return _error_rows(f"{type(exc).__name__}: {exc}")
    floors = {tool: statistics.median(floor[tool].wall) for tool in TOOLS}
    return [
        _row(
            SCENARIOS["wall"],
            {tool: wall[tool].wall for tool in TOOLS},
            f"`cairn models predict -o out.csv` vs `mlflow models predict -t csv -o out.json "
            f"--env-manager local`, process start to exit; median of {repeats} after 1 warm-up; "
            f"of that, read + predict + write: Cairn {floors['cairn'] * 1000:.0f} ms, MLflow "
            f"{floors['mlflow'] * 1000:.0f} ms"
            + ("" if problems else "; both outputs hold the same predictions"),
            problems,
            cpu={tool: wall[tool].cpu for tool in TOOLS},
        ),
        _row(
            SCENARIOS["floor"],
            {tool: floor[tool].wall for tool in TOOLS},
            "one warm process holding both tools and the loaded model, runs interleaved: Cairn "
            "predict_file (pyarrow CSV -> pandas -> predict -> pyarrow CSV) vs MLflow "
            "parse_csv_input + predict + predictions_to_json; median of "
            f"{len(floor['cairn'].wall)} after 1 untimed each",
            cpu={tool: floor[tool].cpu for tool in TOOLS},
        ),
        _row(
            SCENARIOS["help"],
            {tool: help_samples[tool].wall for tool in TOOLS},
            f"`cairn models predict --help` vs `mlflow models predict --help`; median of "
            f"{repeats} after 1 warm-up",
            cpu={tool: help_samples[tool].cpu for tool in TOOLS},
        ),
    ]


def render_notes(rows: Sequence[dict[str, Any]]) -> str:
    notes = []
    for row in rows:
        if row["result"] == "ERROR":
            notes.append(f"- {row['name']}: ERROR\n    " + row["error"].replace("\n", "\n    "))
            continue
        notes.append(f"- {row['name']}: {row['method']}")
        notes.extend(f"  ! {problem}" for problem in row["problems"])
    return "\n".join(notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--floor-worker", nargs=4, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_worker:
        model, csv, repeats, result = args.floor_worker
        floor_worker(model, csv, int(repeats), result)
        return 0
    env = _harness.environment()
    print(
        f"Cairn {env['cairn']} ({env['cairn_commit'] or 'no git'}) vs MLflow {env['mlflow']} "
        f"models predict | Python {env['python']} | {env['cpus']} CPUs | "
        f"load {env['load_average_at_start'][0]:.2f} | {'quick' if args.quick else 'full'}",
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
    return 1 if results & {"FAIL", "INVALID"} else 0


if __name__ == "__main__":
    sys.exit(main())

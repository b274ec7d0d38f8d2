"""Cairn vs MLflow: scoring a Spark DataFrame with ``spark_udf``, side by side.

    .venv/bin/python bench/models_spark.py              # 1,000,000 rows
    .venv/bin/python bench/models_spark.py --quick      # 200,000 rows, fewer samples
    .venv/bin/python bench/models_spark.py --json results.json

One model folder (a scikit-learn ElasticNet on 11 double features, saved by
``mlflow.sklearn.save_model``: MLflow's own format) scored by ``cairn.pyfunc.spark_udf`` and by
``mlflow.pyfunc.spark_udf(..., env_manager="local")`` in ``local[2]`` Spark with every setting
at its default for both (Arrow batches of 10,000 rows). A query is
``df.select(udf(*features)).agg(sum)`` over a cached DataFrame in 2 partitions: every row goes
through the Python workers and one number comes back; both tools' sums must agree.

Scenarios:
  spark_udf        one Spark session, the same cached DataFrame for both tools; one untimed
                   query per tool (workers import the tool, load the model), then the median of
                   timed queries, tools alternating. The note gives the floors: the same query
                   with a pandas UDF that returns its first argument, Spark's cost alone, and
                   (pyspark >= 4.1) with an Arrow UDF that does, without pandas conversions.
  spark_udf_cold   a scoring job as submitted: a fresh process and Spark application per
                   sample (the tool, pandas and pyarrow imported before the clock), timed from
                   ``spark_udf(...)`` to the first query's result, so Python workers start,
                   import the tool and load the model inside the timed region.
  worker_batch     diagnostic: each UDF's own Python work on 10,000-row batches as the worker
                   hands them over (pyspark's Arrow-to-pandas conversion), without Spark.

Exit status: 0 when every scenario with a target passes, 1 when one misses it or the tools'
results differ, 2 when a scenario could not be measured.
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
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness  # bench/_harness.py, beside this script: figures, table, environment

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

TARGET = 1.5  # Cairn's rows/s over MLflow's, end to end (issue #4)
FEATURES = [f"f{i:02d}" for i in range(11)]  # as many as MLflow's wine-quality tutorial
PARTITIONS = 2  # one per core of local[2]
BATCH_ROWS = 10_000  # spark.sql.execution.arrow.maxRecordsPerBatch, Spark's default
SAMPLE_TIMEOUT_S = 900
# As in bench/tracking.py: both tools' variables are dropped from the environment and MLflow's
# telemetry (background traffic on MLflow's side only) is off.
TOOL_ENV_PREFIXES = ("CAIRN_", "MLFLOW_")
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true"}
SCENARIOS = ("spark_udf", "worker_batch", "spark_udf_cold")

Result = dict[str, Any]


# -- Spark, the model and the data ------------------------------------------------------------


@contextlib.contextmanager
def _environment() -> Iterator[None]:
    """Both tools' defaults in this process, its Spark workers and cold samples; then restored."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith(TOOL_ENV_PREFIXES)]:
        del os.environ[name]
    os.environ.update(MLFLOW_ENV)
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers import this interpreter's packages
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _session() -> Any:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("cairn-bench-spark-udf")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _save_model(folder: Path) -> Path:
    """An ElasticNet on the features, saved by MLflow (so MLflow reads its own format)."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import ElasticNet

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.random((2_000, len(FEATURES))), columns=FEATURES)
    target = frame.to_numpy() @ rng.random(len(FEATURES)) + rng.normal(0, 0.1, len(frame))
    model = ElasticNet(alpha=0.001).fit(frame, target)
    path = folder / "elasticnet"
    mlflow.sklearn.save_model(model, str(path), input_example=frame.head(5))
    return path


def _cached_frame(spark: Any, rows: int) -> Any:
    from pyspark.sql import functions as F

    columns = [F.rand(seed).alias(name) for seed, name in enumerate(FEATURES)]
    frame = spark.range(0, rows, 1, PARTITIONS).select(*columns).cache()
    frame.count()
    return frame


def _make_udf(tool: str, spark: Any, model: Path) -> Any:
    if tool == "cairn":
        import cairn.pyfunc

        return cairn.pyfunc.spark_udf(spark, str(model))
    import mlflow.pyfunc

    return mlflow.pyfunc.spark_udf(spark, str(model), env_manager="local")


def _floor_udf() -> Any:
    """A pandas UDF of the same kind that returns its first argument: Spark's cost alone."""
    import typing

    import pandas as pd
    from pyspark.sql.pandas.functions import pandas_udf

    def first(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            yield batch[0]

    first.__annotations__ = {  # pyspark reads typing's spelling of the hints
        "batches": typing.Iterator[typing.Tuple[pd.Series, ...]],  # noqa: UP006
        "return": typing.Iterator[pd.Series],
    }
    return pandas_udf(first, "double")  # type: ignore[call-overload]


def _arrow_floor_udf() -> Any:
    """An Arrow UDF (pyspark >= 4.1) that returns its first argument: no pandas conversion."""
    import typing

    import pyarrow as pa
    from pyspark.sql.functions import arrow_udf

    def first(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            yield batch[0]

    first.__annotations__ = {
        "batches": typing.Iterator[typing.Tuple[pa.Array, ...]],  # noqa: UP006
        "return": typing.Iterator[pa.Array],
    }
    return arrow_udf(first, "double")


def _floor_udfs() -> dict[str, Any]:
    """The pandas UDF floor, and the Arrow UDF floor where this pyspark has ``arrow_udf``."""
    import pyspark.sql.functions

    floors = {"floor": _floor_udf()}
    if hasattr(pyspark.sql.functions, "arrow_udf"):
        floors["arrow_floor"] = _arrow_floor_udf()
    return floors


def _query(frame: Any, udf: Any) -> tuple[float, float]:
    """Seconds to score every row and sum the predictions; and that sum."""
    from pyspark.sql import functions as F

    start = time.perf_counter()
    total = frame.select(udf(*FEATURES).alias("p")).agg(F.sum("p")).collect()[0][0]
    return time.perf_counter() - start, float(total)


def _sums_differ(sums: dict[str, float]) -> list[str]:
    cairn, mlflow = sums["cairn"], sums["mlflow"]
    if abs(cairn - mlflow) <= 1e-9 * max(1.0, abs(mlflow)):
        return []
    return [f"sums of predictions differ: Cairn {cairn!r}, MLflow {mlflow!r}"]


# -- scenarios --------------------------------------------------------------------------------


def measure_warm(spark: Any, model: Path, rows: int, repeats: int) -> Result:
    """Both tools and the floor on one cached DataFrame in one session."""
    frame = _cached_frame(spark, rows)
    try:
        udfs = {tool: _make_udf(tool, spark, model) for tool in _harness.TOOLS}
        udfs.update(_floor_udfs())
        seconds: dict[str, list[float]] = {name: [] for name in udfs}
        sums: dict[str, float] = {}
        for repeat in range(-1, repeats):  # -1: untimed, workers import the tool and load
            for name in list(udfs) if repeat % 2 == 0 else list(udfs)[::-1]:
                elapsed, sums[name] = _query(frame, udfs[name])
                if repeat >= 0:
                    seconds[name].append(elapsed)
    finally:
        frame.unpersist()
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    rates = {name: rows / value for name, value in medians.items()}
    added = {tool: medians[tool] - medians["floor"] for tool in _harness.TOOLS}
    arrow_floor = (
        f"; Arrow floor (an arrow_udf returning its first argument, no pandas): "
        f"{_harness.figure(rates['arrow_floor'], 'rows/s')}, "
        f"{rates['arrow_floor'] / rates['mlflow']:.2f}x MLflow"
        if "arrow_floor" in rates
        else "; no Arrow floor (this pyspark has no arrow_udf)"
    )
    return _row(
        "spark_udf",
        f"spark_udf, {rows:,} rows",
        rates["cairn"],
        rates["mlflow"],
        TARGET,
        f"{rows:,} rows x {len(FEATURES)} doubles, cached, {PARTITIONS} partitions, local[2], one "
        f"session; median of {repeats} queries per tool after one untimed query, alternating; "
        f"floor (a pandas UDF returning its first argument): "
        f"{_harness.figure(rates['floor'], 'rows/s')}, so no pandas UDF can beat MLflow by more "
        f"than {rates['floor'] / rates['mlflow']:.2f}x here; time over the floor: Cairn "
        f"{added['cairn']:+.3f} s, MLflow {added['mlflow']:+.3f} s{arrow_floor}",
        _sums_differ(sums),
        {
            "rows": rows,
            "floor_rows_s": rates["floor"],
            "arrow_floor_rows_s": rates.get("arrow_floor"),
            "seconds": seconds,
            "sums": sums,
        },
    )


def cold_sample(tool: str, model: Path, rows: int) -> Result:
    """One scoring job in this fresh process: ``spark_udf(...)`` and the first query, timed."""
    with _environment():
        spark = _session()
    try:
        frame = _cached_frame(spark, rows)
        # Imports are not part of the job's time: the tool, and what every pandas UDF needs
        # (Cairn imports pandas only when a model is first used).
        for module in (f"{tool}.pyfunc", "pandas", "pyarrow"):
            __import__(module)
        start = time.perf_counter()
        udf = _make_udf(tool, spark, model)
        created = time.perf_counter() - start
        first, total = _query(frame, udf)
        warm, _ = _query(frame, udf)
        return {"create_s": created, "first_query_s": first, "warm_query_s": warm, "sum": total}
    finally:
        spark.stop()


def measure_cold(model: Path, rows: int, repeats: int, verbose: bool) -> Result:
    samples: dict[str, list[Result]] = {tool: [] for tool in _harness.TOOLS}
    for repeat in range(repeats):
        for tool in _harness.TOOLS if repeat % 2 == 0 else _harness.TOOLS[::-1]:
            samples[tool].append(_run_cold_sample(tool, model, rows))
            if verbose:
                job = samples[tool][-1]["create_s"] + samples[tool][-1]["first_query_s"]
                print(f"    {tool}: {job:.2f} s", file=sys.stderr, flush=True)
    jobs = {
        tool: statistics.median(s["create_s"] + s["first_query_s"] for s in runs)
        for tool, runs in samples.items()
    }
    parts = {
        tool: {
            key: statistics.median(s[key] for s in runs)
            for key in ("create_s", "first_query_s", "warm_query_s")
        }
        for tool, runs in samples.items()
    }
    breakdown = "; ".join(
        f"{name}: spark_udf() {p['create_s']:.2f} s + first query {p['first_query_s']:.2f} s "
        f"(a second query {p['warm_query_s']:.2f} s)"
        for name, p in (("Cairn", parts["cairn"]), ("MLflow", parts["mlflow"]))
    )
    return _row(
        "spark_udf_cold",
        f"scoring job, {rows:,} rows, cold",
        rows / jobs["cairn"],
        rows / jobs["mlflow"],
        TARGET,
        f"a fresh process and Spark application per sample, {_samples_text(repeats)} per tool, "
        f"alternating; {breakdown}",
        _sums_differ({tool: runs[0]["sum"] for tool, runs in samples.items()}),
        {"rows": rows, "samples": samples},
    )


def _run_cold_sample(tool: str, model: Path, rows: int) -> Result:
    fd, name = tempfile.mkstemp(prefix="bench-spark-", suffix=".json")
    os.close(fd)
    out = Path(name)
    command = [sys.executable, __file__, "--cold-sample", tool, str(model), str(rows), name]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=SAMPLE_TIMEOUT_S, check=False
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{tool} cold sample exited {proc.returncode}:\n{tail}")
        result: Result = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    return result


def measure_worker_batch(spark: Any, model: Path, repeats: int) -> Result:
    """Diagnostic: the UDFs' own Python work per batch, fed what the Python worker feeds them."""
    import numpy as np
    import pyarrow as pa
    from pyspark.sql.conversion import ArrowBatchTransformer

    rng = np.random.default_rng(11)
    record_batch = pa.RecordBatch.from_arrays(
        [pa.array(rng.random(BATCH_ROWS)) for _ in FEATURES], names=FEATURES
    )
    convert: dict[str, Any] = {
        "timezone": "UTC",
        "struct_in_pandas": "dict",
        "ndarray_as_list": False,
        "prefer_int_ext_dtype": False,
        "df_for_struct": True,
    }
    batches = [tuple(ArrowBatchTransformer.to_pandas(record_batch, **convert)) for _ in range(50)]
    functions: dict[str, Callable[..., Any]] = {
        tool: _make_udf(tool, spark, model).func for tool in _harness.TOOLS
    }
    first = {tool: next(iter(f(iter(batches[:1])))) for tool, f in functions.items()}
    problems = []
    if not np.allclose(first["cairn"].to_numpy(), first["mlflow"].to_numpy()):
        problems.append("the two UDFs return different predictions for the same batch")
    seconds: dict[str, list[float]] = {tool: [] for tool in functions}
    for repeat in range(repeats):
        for tool in list(functions) if repeat % 2 == 0 else list(functions)[::-1]:
            start = time.perf_counter()
            for _ in functions[tool](iter(batches)):
                pass
            seconds[tool].append((time.perf_counter() - start) / len(batches))
    best = {tool: min(values) for tool, values in seconds.items()}
    return _row(
        "worker_batch",
        "Python worker, per batch",
        BATCH_ROWS / best["cairn"],
        BATCH_ROWS / best["mlflow"],
        None,
        f"each UDF's function over {len(batches)} batches of {BATCH_ROWS:,} rows x "
        f"{len(FEATURES)} doubles in this process, model loaded; best of {repeats}: Cairn "
        f"{best['cairn'] * 1e3:.2f} ms, MLflow {best['mlflow'] * 1e3:.2f} ms per batch",
        problems,
        {"seconds_per_batch": seconds},
    )


def _samples_text(repeats: int) -> str:
    return "one sample" if repeats == 1 else f"median of {repeats} samples"


def _row(
    name: str,
    title: str,
    cairn: float,
    mlflow: float,
    target: float | None,
    method: str,
    problems: list[str],
    details: dict[str, Any],
) -> Result:
    speedup = cairn / mlflow
    if problems:
        verdict = "INVALID"
    elif target is None:
        verdict = "INFO"
    else:
        verdict = "PASS" if speedup >= target else "FAIL"
    return {
        "name": name,
        "title": title,
        "unit": "rows/s",
        "target": _target_text(target),
        "cairn": cairn,
        "mlflow": mlflow,
        "speedup": speedup,
        "result": verdict,
        "method": method,
        "problems": problems,
        "details": details,
        "error": None,
    }


def _target_text(target: float | None) -> str:
    return "-" if target is None else f">= {target:g}x"


# -- entry points -----------------------------------------------------------------------------


def run(
    quick: bool = False, verbose: bool = True, only: Sequence[str] | None = None
) -> list[Result]:
    """Measure every scenario (or those named in ``only``); one dict per scenario.

    Keys: ``name``, ``title``, ``unit`` (``rows/s``: higher is better), ``target`` (as shown,
    ``-`` for diagnostics), ``cairn``, ``mlflow``, ``speedup`` (Cairn over MLflow), ``result``
    (PASS, FAIL, INFO, INVALID or ERROR), ``method``, ``problems``, ``details``, ``error`` and
    ``load_average`` (1-minute, before and after).
    """
    rows = 200_000 if quick else 1_000_000
    folder = Path(tempfile.mkdtemp(prefix="bench-spark-udf-"))
    results: list[Result] = []

    def measured(
        name: str, title: str, target: float | None, measure: Callable[[], Result]
    ) -> None:
        if only and name not in only:
            return
        if verbose:
            print(f"[{name}] {title} ...", file=sys.stderr, flush=True)
        before = os.getloadavg()[0]
        try:
            result = measure()
        except Exception:
            result = {
                "name": name,
                "title": title,
                "unit": "rows/s",
                "target": _target_text(target),
                "result": "ERROR",
                "error": traceback.format_exc(),
            }
        result["load_average"] = (before, os.getloadavg()[0])
        results.append(result)

    try:
        with _environment():
            model = _save_model(folder)
            in_session = {"spark_udf", "worker_batch"}  # the cold samples start their own
            spark = _session() if not only or in_session & set(only) else None
            try:
                measured(
                    "spark_udf",
                    f"spark_udf, {rows:,} rows",
                    TARGET,
                    lambda: measure_warm(spark, model, rows, 2 if quick else 7),
                )
                measured(
                    "worker_batch",
                    "Python worker, per batch",
                    None,
                    lambda: measure_worker_batch(spark, model, 5 if quick else 20),
                )
            finally:
                if spark is not None:
                    spark.stop()
            measured(
                "spark_udf_cold",
                f"scoring job, {rows:,} rows, cold",
                TARGET,
                lambda: measure_cold(model, rows, 1 if quick else 3, verbose),
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def render(results: Sequence[Result]) -> str:
    """The results table, then one note per scenario."""
    header = ("scenario", "Cairn", "MLflow", "speed-up", "target", "result")
    lines = []
    notes = []
    for result in results:
        if result["result"] == "ERROR":
            lines.append((result["title"], "-", "-", "-", result["target"], "ERROR"))
            notes.append(
                f"- {result['name']}: ERROR\n    " + result["error"].replace("\n", "\n    ")
            )
            continue
        lines.append(
            (
                result["title"],
                _harness.figure(result["cairn"], result["unit"]),
                _harness.figure(result["mlflow"], result["unit"]),
                f"{result['speedup']:,.2f}x",
                result["target"],
                result["result"],
            )
        )
        notes.append(f"- {result['name']}: {result['method']}")
        notes.extend(f"  ! {problem}" for problem in result["problems"])
        load = result["load_average"]
        if max(load) > (os.cpu_count() or 1):
            notes.append(
                f"  ! the machine was busy (load average {load[0]:.1f} -> {load[1]:.1f} on "
                f"{os.cpu_count()} CPUs): these figures are noisy"
            )
    return _harness.markdown_table(header, lines) + "\n\n" + "\n".join(notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="spark_udf: Cairn vs MLflow, side by side.")
    parser.add_argument("--quick", action="store_true", help="200,000 rows, fewer samples")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--cold-sample", nargs=4, metavar=("TOOL", "MODEL", "ROWS", "OUT"), help=argparse.SUPPRESS
    )  # one spark_udf_cold sample, in a subprocess
    args = parser.parse_args(argv)
    if args.cold_sample:
        tool, model, rows, out = args.cold_sample
        result = cold_sample(tool, Path(model), int(rows))
        Path(out).write_text(json.dumps(result))
        return 0
    env = _harness.environment()
    env["pyspark"] = _harness.installed_version("pyspark")
    env["scikit-learn"] = _harness.installed_version("scikit-learn")
    print(
        f"Cairn {env['cairn']} ({env['cairn_commit'] or 'no git'}) vs MLflow {env['mlflow']} | "
        f"pyspark {env['pyspark']} | {env['cpus']} CPUs | "
        f"load {env['load_average_at_start'][0]:.2f} | {'quick' if args.quick else 'full'} sizes",
        flush=True,
    )
    results = run(quick=args.quick, only=args.only)
    print()
    print(render(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "quick": args.quick, "scenarios": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    verdicts = {result["result"] for result in results}
    if "ERROR" in verdicts:
        return 2
    return 1 if verdicts & {"FAIL", "INVALID"} else 0


if __name__ == "__main__":
    sys.exit(main())

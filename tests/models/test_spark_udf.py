"""``cairn.pyfunc.spark_udf`` on a real local Spark session (one for the whole run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

import cairn.pyfunc
import cairn.sklearn
from cairn.errors import InvalidParameterError

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

FEATURES = pd.DataFrame(
    {
        "a": np.linspace(-1.0, 1.0, 120),
        "b": np.cos(np.arange(120.0)),
        "n": np.arange(120, dtype="int64") % 7,
    }
)


class Probe(cairn.pyfunc.PythonModel):
    """Records each load and each batch in ``log_dir``; ``params['output']`` picks the shape."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir

    def load_context(self, context: cairn.pyfunc.PythonModelContext) -> None:
        with open(os.path.join(self.log_dir, "loads"), "a") as out:
            out.write(f"{os.getpid()}\n")

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        with open(os.path.join(self.log_dir, "batches"), "a") as out:
            out.write(f"{os.getpid()} {len(model_input)}\n")
        x = model_input["x"].to_numpy()
        output = (params or {}).get("output", "label")
        if output == "label":
            return (x > 0).astype("int64")
        if output == "x":
            return x
        if output == "matrix":
            return np.column_stack([x - 1, x + 1])
        return pd.DataFrame({"hi": x + 1, "lo": x - 1, "extra": x})


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from sklearn.linear_model import LinearRegression

    estimator = LinearRegression().fit(FEATURES, FEATURES["a"] * 2 - FEATURES["b"] + FEATURES["n"])
    path = tmp_path_factory.mktemp("spark-udf") / "linear"
    cairn.sklearn.save_model(estimator, path, input_example=FEATURES.head())
    return path, estimator


@pytest.fixture
def probe_model(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A saved ``Probe`` (pickled by value: Spark's workers cannot import this test module)."""
    import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        logs = tmp_path / "logs"
        logs.mkdir()
        path = tmp_path / "probe"
        cairn.pyfunc.save_model(path, Probe(str(logs)), input_example=pd.DataFrame({"x": [0.5]}))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    (logs / "loads").unlink(missing_ok=True)  # saving inferred the output signature
    (logs / "batches").unlink(missing_ok=True)
    yield path, logs


def _scores(frame: Any, column: str = "p") -> list[Any]:
    """Column ``column`` of a Spark DataFrame with an ``id`` column, in ``id`` order.

    Sorted here: ``orderBy`` would run the UDF twice (once more to sample the range).
    """
    return [row[column] for row in sorted(frame.collect(), key=lambda row: row["id"])]


def _features(spark: Any) -> Any:
    return spark.createDataFrame(FEATURES.reset_index(names="id"))


@pytest.mark.parametrize("call", ["signature", "names", "columns", "struct"])
def test_predictions_equal_model_predict_for_every_way_of_passing_columns(
    spark: Any, linear_model: tuple[Path, Any], call: str
) -> None:
    from pyspark.sql.functions import col, struct

    path, estimator = linear_model
    expected = cairn.pyfunc.load_model(path).predict(FEATURES)
    np.testing.assert_allclose(expected, estimator.predict(FEATURES))
    udf = cairn.pyfunc.spark_udf(spark, str(path))
    score = {
        "signature": lambda: udf(),
        "names": lambda: udf("a", "b", "n"),
        "columns": lambda: udf(col("a"), col("b"), col("n")),
        "struct": lambda: udf(struct("n", "b", "a")),  # fields go by name, not position
    }[call]
    # An extra column, and the signature's columns in another order.
    frame = (
        _features(spark).withColumn("unused", col("a") * 0).select("n", "unused", "id", "b", "a")
    )
    np.testing.assert_allclose(_scores(frame.select("id", score().alias("p"))), expected)


def test_model_loads_once_per_python_worker_not_per_batch(
    spark: Any, probe_model: tuple[Path, Path]
) -> None:
    path, logs = probe_model
    udf = cairn.pyfunc.spark_udf(spark, path, "long")
    tasks = 8
    frame = spark.range(0, 3200, 1, tasks).selectExpr("id", "cast(id - 1600 as double) as x")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10")
    try:
        for _ in range(2):  # a second query reuses the workers' loaded model
            assert sum(_scores(frame.select("id", udf("x").alias("p")))) == 1599
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    batches = [line.split() for line in (logs / "batches").read_text().splitlines()]
    loads = (logs / "loads").read_text().split()
    assert len(batches) == 640 and {size for _, size in batches} == {"10"}
    # Every Python worker that scored loaded the model exactly once, for all its batches
    # and tasks: Spark reuses its few workers for the 2 x 8 tasks.
    assert sorted(loads) == sorted({pid for pid, _ in batches})
    assert len(loads) < 2 * tasks


# result_type, the model output it gets (Probe's params), the result's Spark type, values.
RESULT_TYPES = {
    "double": ("double", "label", "double", [0.0, 0.0, 1.0]),
    "float": ("float", "label", "float", [0.0, 0.0, 1.0]),
    "long": ("long", "label", "bigint", [0, 0, 1]),
    "int": ("int", "label", "int", [0, 0, 1]),
    "string": ("string", "label", "string", ["0", "0", "1"]),
    "boolean": ("boolean", "label", "boolean", [False, False, True]),
    "array": ("array<double>", "matrix", "array<double>", [[-2.5, -0.5], [-1, 1], [1, 3]]),
    "array of one": ("array<long>", "label", "array<bigint>", [[0], [0], [1]]),
    "array of frame rows": (
        "array<string>",
        "table",
        "array<string>",
        [["-0.5", "-2.5", "-1.5"], ["1.0", "-1.0", "0.0"], ["3.0", "1.0", "2.0"]],
    ),
    "struct": (
        "struct<lo: double, hi: double>",
        "table",
        "struct<lo:double,hi:double>",
        [(-2.5, -0.5), (-1.0, 1.0), (1.0, 3.0)],
    ),
    "struct of matrix": (
        "lo double, hi string",
        "matrix",
        "struct<lo:double,hi:string>",
        [(-2.5, "-0.5"), (-1.0, "1.0"), (1.0, "3.0")],
    ),
}


# These pass a DataType object instead of the DDL string.
AS_DATA_TYPE = {"float", "array of one", "struct of matrix"}


@pytest.mark.parametrize("case", RESULT_TYPES)
def test_result_types(spark: Any, probe_model: tuple[Path, Path], case: str) -> None:
    from pyspark.sql.types import DataType

    result_type, output, spark_type, expected = RESULT_TYPES[case]
    path, _ = probe_model
    requested: Any = DataType.fromDDL(result_type) if case in AS_DATA_TYPE else result_type
    udf = cairn.pyfunc.spark_udf(spark, path, requested, params={"output": output})
    frame = spark.createDataFrame(pd.DataFrame({"id": [0, 1, 2], "x": [-1.5, 0.0, 2.0]}))
    scored = frame.coalesce(1).select("id", udf("x").alias("p"))
    assert scored.schema["p"].dataType.simpleString() == spark_type
    got = _scores(scored)
    assert [tuple(v) if spark_type.startswith("struct") else v for v in got] == expected


def test_streaming_query_scores_each_micro_batch(
    spark: Any, linear_model: tuple[Path, Any], tmp_path: Path
) -> None:
    path, estimator = linear_model
    source = tmp_path / "incoming"
    frame = FEATURES.reset_index(names="id")
    source.mkdir()
    for part, start in enumerate(range(0, len(frame), 60)):
        frame.iloc[start : start + 60].to_parquet(source / f"part-{part}.parquet")
    schema = spark.createDataFrame(frame.head(1)).schema
    udf = cairn.pyfunc.spark_udf(spark, path)
    stream = (
        spark.readStream.schema(schema)
        .option("maxFilesPerTrigger", 1)
        .parquet(str(source))
        .select("id", udf().alias("p"))
    )
    query = (
        stream.writeStream.format("memory")
        .queryName("cairn_scores")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    try:
        assert query.awaitTermination(120)
        assert query.exception() is None
        assert len([p for p in query.recentProgress if p["numInputRows"]]) == 2
        np.testing.assert_allclose(
            _scores(spark.table("cairn_scores")), estimator.predict(FEATURES)
        )
    finally:
        query.stop()
        spark.catalog.dropTempView("cairn_scores")


def test_model_shipped_to_executors_without_a_shared_filesystem(
    spark: Any, linear_model: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pyspark import SparkFiles

    from cairn.models import spark_udf as module

    path, estimator = linear_model
    unpacked_root = Path(tempfile.gettempdir(), "cairn-spark-models")  # as the workers see it
    monkeypatch.setattr(module, "_shares_filesystem", lambda spark: False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the driver stages the tar
    before = set(Path(SparkFiles.getRootDirectory()).glob("cairn-model-*.tar"))
    udf = cairn.pyfunc.spark_udf(spark, path)
    (shipped,) = set(Path(SparkFiles.getRootDirectory()).glob("cairn-model-*.tar")) - before
    unpacked = unpacked_root / shipped.name.removesuffix(".tar")
    try:
        np.testing.assert_allclose(
            _scores(_features(spark).select("id", udf().alias("p"))), estimator.predict(FEATURES)
        )
        assert (unpacked / "MLmodel").is_file()  # the workers loaded the shipped copy
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def test_calls_the_udf_cannot_serve_are_refused_up_front(
    spark: Any, linear_model: tuple[Path, Any], tmp_path: Path
) -> None:
    from sklearn.linear_model import LinearRegression

    path, _ = linear_model
    with pytest.raises(InvalidParameterError, match="env_manager='conda' is not supported"):
        cairn.pyfunc.spark_udf(spark, path, env_manager="conda")
    with pytest.raises(InvalidParameterError, match="result_type map<string,double> is not"):
        cairn.pyfunc.spark_udf(spark, path, "map<string, double>")
    with pytest.raises(InvalidParameterError, match="'dubble' does not parse"):
        cairn.pyfunc.spark_udf(spark, path, "dubble")
    with pytest.raises(InvalidParameterError, match="got 4 columns but the model takes 3: a, b"):
        cairn.pyfunc.spark_udf(spark, path)("a", "b", "n", "a")
    unsigned = tmp_path / "unsigned"
    cairn.sklearn.save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), unsigned)
    with pytest.raises(InvalidParameterError, match="signature names no input columns"):
        cairn.pyfunc.spark_udf(spark, unsigned)()


def test_a_model_without_signature_takes_columns_by_position(spark: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    values = FEATURES[["a", "b"]].to_numpy()
    estimator = LinearRegression().fit(values, values[:, 0] - 3 * values[:, 1])
    cairn.sklearn.save_model(estimator, tmp_path / "unsigned")
    udf = cairn.pyfunc.spark_udf(spark, tmp_path / "unsigned")
    scored = _features(spark).select("id", udf("a", "b").alias("p"))
    np.testing.assert_allclose(_scores(scored), estimator.predict(values))


# Failing batches end their Python worker; these come last so fewer workers restart.


def test_predictions_that_do_not_fit_the_result_type_are_refused(
    spark: Any, probe_model: tuple[Path, Path]
) -> None:
    from pyspark.errors import PythonException

    path, _ = probe_model
    frame = spark.createDataFrame(pd.DataFrame({"x": [-1.5, 0.0, 2.0]})).coalesce(1)
    several = cairn.pyfunc.spark_udf(spark, path, "double", params={"output": "matrix"})
    with pytest.raises(PythonException, match=r"returns 2 values per row.*array<double>"):
        frame.select(several("x")).collect()
    lossy = cairn.pyfunc.spark_udf(spark, path, "long", params={"output": "x"})
    with pytest.raises(PythonException, match=r"float64' to Arrow type 'int64'"):
        frame.select(lossy("x")).collect()


def test_input_that_does_not_match_the_signature_fails_with_a_clear_error(
    spark: Any, linear_model: tuple[Path, Any]
) -> None:
    from pyspark.errors import PythonException

    path, _ = linear_model
    frame = spark.createDataFrame(FEATURES.astype({"a": str}))
    udf = cairn.pyfunc.spark_udf(spark, path)
    expected = (
        r"(?s)ModelInputError: spark_udf\(.*linear\): a batch of \d+ rows does not fit the model "
        r"\(UDF columns map by position onto the signature's a, b, n\).*"
        r"column 'a': expected double, got string"
    )
    with pytest.raises(PythonException, match=expected):
        frame.select(udf("a", "b", "n")).collect()


def test_importing_cairn_pyfunc_does_not_import_pyspark() -> None:
    code = "import sys, cairn, cairn.pyfunc; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""The scoring app over a real socket: uvicorn on a free 127.0.0.1 port, in a thread.

Every request format, every kind of bad payload (each followed by a good request that must
still succeed), limits, timeouts, river's ``/learn``, MLflow-saved models, and the encodings
of what models return.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from river import linear_model, preprocessing
from sklearn.linear_model import LogisticRegression

import cairn.pyfunc
import cairn.river
import cairn.sklearn
from cairn import __version__
from cairn.models.serving import ScoringApp, ScoringSettings, create_scoring_app
from cairn.models.serving.warmup import warm_up_body
from cairn.models.signature import infer_signature

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

COLUMNS = ["a", "b", "c", "d"]
MAX_BODY = 64 * 1024
HEADER = ",".join(COLUMNS)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A scoring app behind uvicorn, and a keep-alive httpx client pointed at it."""

    app: ScoringApp
    client: httpx.Client

    def invoke(self, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        return self.client.post("/invocations", **kwargs)

    def predictions(self, body: Any) -> Any:
        response = self.invoke(body)
        assert response.status_code == 200, response.text
        return response.json()["predictions"]


@contextlib.contextmanager
def serving(app: ScoringApp) -> Iterator[Served]:
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="scoring-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("scoring server did not start")
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Served(app, client)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(rng.normal(size=(200, 4)), columns=COLUMNS)


@pytest.fixture(scope="module")
def sklearn_dir(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> Path:
    labels = (frame["a"] + frame["b"] > 0).astype(int)
    path = tmp_path_factory.mktemp("models") / "logistic"
    model = LogisticRegression().fit(frame, labels)
    cairn.sklearn.save_model(model, path, input_example=frame[:3])
    return path


@pytest.fixture(scope="module")
def expected(sklearn_dir: Path, frame: pd.DataFrame) -> list[int]:
    return [int(v) for v in cairn.pyfunc.load_model(sklearn_dir).predict(frame)]


@pytest.fixture(scope="module")
def served(sklearn_dir: Path) -> Iterator[Served]:
    app = create_scoring_app(sklearn_dir, ScoringSettings(max_request_bytes=MAX_BODY))
    with serving(app) as running:
        yield running


def _save_custom(path: Path, model: cairn.pyfunc.PythonModel, **kwargs: Any) -> Path:
    cairn.pyfunc.save_model(path, model, **kwargs)
    return path


# -- health ------------------------------------------------------------------------------------


def test_ping_health_and_version(served: Served) -> None:
    assert served.app.warmed_up
    for path in ("/ping", "/health"):
        response = served.client.get(path)
        assert (response.status_code, response.text) == (200, "OK")
    assert served.client.get("/version").text == __version__


def test_unknown_path_and_wrong_method(served: Served) -> None:
    missing = served.client.get("/predict")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    wrong = served.client.get("/invocations")
    assert wrong.status_code == 405
    assert "takes POST" in wrong.json()["message"]


# -- request formats ---------------------------------------------------------------------------


def test_every_format_gives_the_models_predictions(
    served: Served, frame: pd.DataFrame, expected: list[int]
) -> None:
    rows = frame.to_numpy().tolist()
    records = frame.to_dict(orient="records")
    split = {"columns": COLUMNS, "data": rows, "index": list(range(len(rows)))}
    assert served.predictions({"dataframe_split": split}) == expected
    assert served.predictions({"dataframe_records": records}) == expected
    assert served.predictions({"instances": records}) == expected
    assert served.predictions({"inputs": rows}) == expected
    assert served.predictions({"inputs": frame.to_dict(orient="list")}) == expected
    csv = frame.to_csv(index=False)
    response = served.invoke(content=csv, headers={"content-type": "text/csv; charset=utf-8"})
    assert response.status_code == 200
    assert response.json() == {"predictions": expected}


def test_columns_are_matched_by_name_and_integers_widen(
    served: Served, frame: pd.DataFrame, expected: list[int]
) -> None:
    reordered = frame[COLUMNS[::-1]].assign(extra="ignored")
    split = {"columns": list(reordered.columns), "data": reordered.to_numpy().tolist()}
    assert served.predictions({"dataframe_split": split}) == expected
    whole = {"columns": COLUMNS, "data": [[1, 2, 3, 4], [0, -1, 0, 1]]}
    model = cairn.pyfunc.load_model(served.app.model.path)
    as_floats = pd.DataFrame([[1.0, 2.0, 3.0, 4.0], [0.0, -1.0, 0.0, 1.0]], columns=COLUMNS)
    assert served.predictions({"dataframe_split": whole}) == model.predict(as_floats).tolist()


def test_params_reach_the_model(tmp_path: Path) -> None:
    class Echo(cairn.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return [f"{(params or {}).get('greeting', 'none')} {x}" for x in model_input["x"]]

    app = create_scoring_app(_save_custom(tmp_path / "echo", Echo()))
    with serving(app) as running:
        body = {"dataframe_records": [{"x": "a"}, {"x": "b"}], "params": {"greeting": "hi"}}
        assert running.predictions(body) == ["hi a", "hi b"]
        assert running.predictions({"inputs": {"x": ["c"]}}) == ["none c"]


# -- bad payloads ------------------------------------------------------------------------------

SPLIT_OK = {"dataframe_split": {"columns": COLUMNS, "data": [[0.1, 0.2, 0.3, 0.4]]}}
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("content", "headers", "status", "match"),
    [
        ("{not json", JSON, 400, "not valid JSON"),
        ("[1, 2]", JSON, 400, "must be a JSON object"),
        ('{"dataframe_split": {"data": []}, "extra": 1}', JSON, 400, "unknown field.*'extra'"),
        ('{"inputs": [], "instances": []}', JSON, 400, "got instances and inputs"),
        ('{"params": {}}', JSON, 400, "exactly one of"),
        ('{"inputs": [[1, 2, 3, 4]], "params": [1]}', JSON, 400, "params must be a JSON object"),
        ('{"dataframe_split": [[1, 2]]}', JSON, 400, "dataframe_split must be an object"),
        ('{"dataframe_split": {"rows": []}}', JSON, 400, "must have 'data'"),
        ('{"dataframe_records": {"a": 1}}', JSON, 400, "must be a list of records"),
        (
            '{"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3]]}}',
            JSON,
            400,
            "row 0 has 3 values for 4 columns",
        ),
        (
            '{"dataframe_split": {"columns": ["a", "b"], "data": [1, 2]}}',
            JSON,
            400,
            "not a valid table",
        ),
        ("a=1", {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        ("{}", {"content-type": "application/json; charset=latin-1"}, 415, "UTF-8 only"),
        ("{}", {"content-type": "application/json; format=pandas-split"}, 415, "'format'"),
        ("", {"content-type": "text/csv"}, 400, "CSV body is empty"),
        (f"{HEADER}\n1,2,3,4\n5,6,x,8\n", {"content-type": "text/csv"}, 400, "'x'"),
        (f"{HEADER}\n1,2,3,4\n5,6,7,8,9\n", {"content-type": "text/csv"}, 400, "Expected 4 fields"),
    ],
)
def test_bad_payloads_get_4xx_and_the_server_keeps_answering(
    served: Served, content: str, headers: dict[str, str], status: int, match: str
) -> None:
    response = served.invoke(content=content, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error_code", "message"}
    assert error["error_code"] == "BAD_REQUEST"
    assert re.search(match, error["message"]), error["message"]
    assert len(served.predictions(SPLIT_OK)) == 1


def test_schema_mismatch_names_every_offending_column(served: Served) -> None:
    body = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [["x", True, 1.5]]}}
    response = served.invoke(body)
    assert response.status_code == 400
    message = response.json()["message"]
    for problem in (
        "column 'a': expected double, got string",
        "column 'b': expected double, got boolean",
        "column 'd': missing",
    ):
        assert problem in message
    assert len(served.predictions(SPLIT_OK)) == 1


def test_booleans_in_a_numeric_table_are_refused(served: Served) -> None:
    body = {"dataframe_split": {"columns": COLUMNS, "data": [[True, 0.5, 0.5, 0.5]]}}
    response = served.invoke(body)
    assert response.status_code == 400
    assert "column 'a': expected double, got boolean" in response.json()["message"]


def test_model_errors_are_400_with_the_reason(served: Served) -> None:
    body = {"dataframe_split": {"columns": COLUMNS, "data": [[None, 0.5, 0.5, 0.5]]}}
    response = served.invoke(body)
    assert response.status_code == 400
    assert "could not score this input: ValueError" in response.json()["message"]
    assert "NaN" in response.json()["message"]


def test_body_over_the_limit_is_413_by_header_or_while_streaming(served: Served) -> None:
    rows = [[0.5] * 4] * 5000  # ~100 KiB of JSON
    content = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}}).encode()
    assert len(content) > MAX_BODY
    response = served.invoke(content=content, headers=JSON)
    assert response.status_code == 413
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for start in range(0, len(content), 8192):
            yield content[start : start + 8192]

    streamed = served.invoke(content=chunks(), headers=JSON)
    assert streamed.status_code == 413
    assert len(served.predictions(SPLIT_OK)) == 1


def test_slow_model_gets_504_and_the_next_request_is_served(tmp_path: Path) -> None:
    class Slow(cairn.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            time.sleep(float(model_input["seconds"].iloc[0]))
            return [0] * len(model_input)

    settings = ScoringSettings(timeout_seconds=0.2)
    app = create_scoring_app(_save_custom(tmp_path / "slow", Slow()), settings)
    with serving(app) as running:
        late = running.invoke({"dataframe_records": [{"seconds": 1.0}]})
        assert late.status_code == 504
        assert late.json()["error_code"] == "DEADLINE_EXCEEDED"
        # The abandoned call still holds the model for a moment: retry until it is done.
        deadline = time.monotonic() + 20
        while (response := running.invoke({"dataframe_records": [{"seconds": 0}]})).is_error:
            assert response.status_code == 504
            assert time.monotonic() < deadline
        assert response.json() == {"predictions": [0]}


# -- what models return ------------------------------------------------------------------------


def test_tables_series_strings_and_nan_are_written_as_json(tmp_path: Path) -> None:
    class Shapes(cairn.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            kind = (params or {}).get("kind")
            n = len(model_input)
            if kind == "frame":
                return pd.DataFrame({"label": ["x"] * n, "score": np.arange(n) / 2})
            if kind == "series":
                return pd.Series(np.arange(n), name="value")
            if kind == "strings":
                return np.array(["cat"] * n, dtype=object)
            if kind == "matrix":
                return np.arange(2 * n, dtype=np.float32).reshape(n, 2)
            if kind == "opaque":
                return [object()] * n
            return np.array([np.nan] * n)

    app = create_scoring_app(_save_custom(tmp_path / "shapes", Shapes()))
    with serving(app) as running:
        rows = {"dataframe_records": [{"x": 1}, {"x": 2}]}

        def ask(kind: str) -> Any:
            return running.predictions({**rows, "params": {"kind": kind}})

        assert ask("frame") == [{"label": "x", "score": 0.0}, {"label": "x", "score": 0.5}]
        assert ask("series") == [{"value": 0}, {"value": 1}]
        assert ask("strings") == ["cat", "cat"]
        assert ask("matrix") == [[0.0, 1.0], [2.0, 3.0]]
        assert ask("nan") == [None, None]
        opaque = running.invoke({**rows, "params": {"kind": "opaque"}})
        assert opaque.status_code == 500
        assert opaque.json()["error_code"] == "INTERNAL_ERROR"
        assert "cannot be written as JSON" in opaque.json()["message"]


# -- models from elsewhere ---------------------------------------------------------------------


def test_model_saved_by_mlflow_is_served(tmp_path: Path, frame: pd.DataFrame) -> None:
    import mlflow.sklearn

    labels = (frame["c"] > 0).astype(int)
    model = LogisticRegression().fit(frame, labels)
    mlflow.sklearn.save_model(model, str(tmp_path / "mlflow-model"), input_example=frame[:2])
    app = create_scoring_app(tmp_path / "mlflow-model")
    assert app.warmed_up
    with serving(app) as running:
        split = {"columns": COLUMNS, "data": frame.to_numpy().tolist()}
        assert running.predictions({"dataframe_split": split}) == model.predict(frame).tolist()


def test_warm_up_without_example_uses_a_row_from_the_signature(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    labels = (frame["d"] > 0).astype(int)
    path = tmp_path / "no-example"
    model = LogisticRegression().fit(frame, labels)
    cairn.sklearn.save_model(model, path, signature=infer_signature(frame))
    app = create_scoring_app(path)
    body = warm_up_body(app.model)
    assert body is not None
    assert app.warmed_up
    assert b'"columns":["a","b","c","d"]' in body


def test_start_up_sends_the_warm_up_request_through_the_http_path(
    sklearn_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_scoring_app(sklearn_dir)
    seen: list[int] = []
    predict = app.model.predict

    def counting(data: Any, params: Any = None) -> Any:
        seen.append(len(data))
        return predict(data, params=params)

    monkeypatch.setattr(app.model, "predict", counting)
    with serving(app) as running:
        assert seen == [3, 3]  # the saved 3-row example, twice, before the first connection
        assert len(running.predictions(SPLIT_OK)) == 1
    assert seen == [3, 3, 1]


def test_model_without_example_or_signature_still_serves(tmp_path: Path) -> None:
    class Constant(cairn.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return [42] * len(model_input)

    app = create_scoring_app(_save_custom(tmp_path / "constant", Constant()))
    assert not app.warmed_up
    with serving(app) as running:
        assert running.predictions({"inputs": [[1], [2]]}) == [42, 42]


# -- online models -----------------------------------------------------------------------------


def test_river_model_learns_through_the_learn_route(tmp_path: Path) -> None:
    model = preprocessing.StandardScaler() | linear_model.LinearRegression(intercept_lr=0.5)
    model.learn_one({"x": 0.0}, 0.0)
    path = tmp_path / "online"
    cairn.river.save_model(model, path, input_example=pd.DataFrame({"x": [1.0]}))
    with serving(create_scoring_app(path)) as running:
        probe = {"dataframe_split": {"columns": ["x"], "data": [[2.0]]}}
        before = running.predictions(probe)[0]
        rows = [{"x": x} for x in (1.0, 2.0, 3.0)] * 30
        learned = running.client.post(
            "/learn", json={"dataframe_records": rows, "targets": [10.0, 20.0, 30.0] * 30}
        )
        assert learned.status_code == 200
        assert learned.json() == {"learned": 90}
        after = running.predictions(probe)[0]
        assert abs(after - 20.0) < abs(before - 20.0) / 2

        mismatch = running.client.post("/learn", json={"inputs": [[1.0], [2.0]], "targets": [1]})
        assert mismatch.status_code == 400
        assert "2 rows but 1 targets" in mismatch.json()["message"]
        missing = running.client.post("/learn", json={"inputs": [[1.0]]})
        assert missing.status_code == 400
        assert "needs targets" in missing.json()["message"]
        assert running.predictions(probe) == [after]


def test_learn_on_a_model_that_cannot_learn_is_400(served: Served) -> None:
    response = served.client.post("/learn", json={"inputs": [[0.1] * 4], "targets": [1]})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_STATE"
    assert "cannot learn online" in response.json()["message"]

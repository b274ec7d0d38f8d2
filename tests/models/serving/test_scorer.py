"""Micro-batching: requests that queue while the model is busy are scored as one table.

The model's first call is held on an event, so the queue fills deterministically; the model
records the size of every table it is given.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import cairn.pyfunc
import cairn.sklearn
from cairn.errors import ModelInputError
from cairn.models.serving.payloads import batch_key, decode_json
from cairn.models.serving.scorer import Job, Scorer

if TYPE_CHECKING:
    from pathlib import Path

    from cairn.models.pyfunc import PyFuncModel

COLUMNS = ["a", "b"]


class Recorder:
    """Wraps the model's predict: holds the first call until released, records table sizes."""

    def __init__(self, model: PyFuncModel) -> None:
        self.predict = model._impl.predict
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, data: Any, params: Any = None) -> Any:
        self.sizes.append(len(data))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(timeout=30)
        return self.predict(data, params=params)


@pytest.fixture
def model(tmp_path: Path) -> PyFuncModel:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    fitted = LinearRegression().fit(frame, frame["a"] * 2 + frame["b"])
    cairn.sklearn.save_model(fitted, tmp_path / "m", input_example=frame[:2])
    return cairn.pyfunc.load_model(tmp_path / "m")


def _job(rows: list[list[Any]], *, params: dict[str, Any] | None = None) -> Job:
    document: dict[str, Any] = {"dataframe_split": {"columns": COLUMNS, "data": rows}}
    if params is not None:
        document["params"] = params
    payload = decode_json(orjson.dumps(document))
    return Job(learn=False, payload=payload, key=batch_key(payload))


async def _score_while_busy(scorer: Scorer, recorder: Recorder, jobs: list[Job]) -> list[Any]:
    """Submit a first job, queue ``jobs`` while the model holds it, then let it go."""
    first = asyncio.ensure_future(scorer.submit(_job([[0.0, 0.0]])))
    await asyncio.to_thread(recorder.entered.wait, 30)
    queued = [asyncio.ensure_future(scorer.submit(job)) for job in jobs]
    await asyncio.sleep(0)  # every submit has put its job in the queue
    recorder.release.set()
    await first
    return await asyncio.gather(*queued, return_exceptions=True)


def _predictions(body: Any) -> list[float]:
    assert isinstance(body, bytes), body
    predictions: list[float] = orjson.loads(body)["predictions"]
    return predictions


def test_queued_requests_are_scored_as_one_table(
    model: PyFuncModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(model)
    monkeypatch.setattr(model._impl, "predict", recorder)
    scorer = Scorer(model)
    requests = [[[float(i), 1.0]] for i in range(5)] + [[[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]]]
    results = asyncio.run(_score_while_busy(scorer, recorder, [_job(r) for r in requests]))
    scorer.close()
    assert recorder.sizes == [1, 8]
    for rows, body in zip(requests, results, strict=True):
        alone = model.predict(pd.DataFrame(rows, columns=COLUMNS))
        np.testing.assert_allclose(_predictions(body), alone, rtol=1e-12)


def test_a_bad_request_in_a_batch_fails_alone(
    model: PyFuncModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(model)
    monkeypatch.setattr(model._impl, "predict", recorder)
    scorer = Scorer(model)
    jobs = [_job([[1.0, 1.0]]), _job([["text", 1.0]]), _job([[2.0, 0.0]])]
    results = asyncio.run(_score_while_busy(scorer, recorder, jobs))
    scorer.close()
    assert isinstance(results[1], ModelInputError)
    assert "column 'a': expected double, got string" in results[1].message
    np.testing.assert_allclose(_predictions(results[0]), model.predict({"a": [1.0], "b": [1.0]}))
    np.testing.assert_allclose(_predictions(results[2]), model.predict({"a": [2.0], "b": [0.0]}))


def test_requests_with_params_or_batching_off_are_scored_one_by_one(
    model: PyFuncModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(model)
    monkeypatch.setattr(model._impl, "predict", recorder)
    scorer = Scorer(model)
    jobs = [_job([[1.0, 1.0]], params={"x": 1}), _job([[2.0, 1.0]], params={"x": 1})]
    asyncio.run(_score_while_busy(scorer, recorder, jobs))
    scorer.close()
    assert recorder.sizes == [1, 1, 1]

    recorder = Recorder(model)
    monkeypatch.setattr(model._impl, "predict", recorder)
    unbatched = Scorer(model, micro_batching=False)
    asyncio.run(_score_while_busy(unbatched, recorder, [_job([[1.0, 1.0]]) for _ in range(3)]))
    unbatched.close()
    assert recorder.sizes == [1, 1, 1, 1]


def test_custom_models_are_never_merged(tmp_path: Path) -> None:
    class Counter(cairn.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return [len(model_input)] * len(model_input)

    cairn.pyfunc.save_model(tmp_path / "c", Counter())
    assert not Scorer(cairn.pyfunc.load_model(tmp_path / "c")).micro_batching

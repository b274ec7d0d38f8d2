"""Model work off the event loop, with micro-batching of small requests.

One worker thread runs the model, so the event loop stays free to read requests and answer
``/ping`` while a large request is scored. Requests that queue up while the worker is busy
go to it together: those with the same table shape (same format and columns, no ``params``)
are scored as one table when the model predicts row by row (scikit-learn, river), and each
gets its slice back. A model call costs far more than a row (scikit-learn validates a
DataFrame in ~0.5 ms, then scores eight rows as fast as one), so under concurrent load this
multiplies throughput without adding latency: nothing waits for a batch to fill. When the
merged call fails, each request is scored alone, so errors stay per request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.errors import CairnError, ModelInputError
from cairn.models.serving.payloads import (
    Payload,
    decode_csv,
    decode_json,
    merge,
    row_count,
    to_model_input,
)
from cairn.models.serving.responses import json_bytes, predictions_json

if TYPE_CHECKING:
    from cairn.models.pyfunc import PyFuncModel

__all__ = ["Job", "Scorer", "predicts_row_by_row"]

_log = logging.getLogger("cairn.models.serving")

# Loader modules whose predictions for a row do not depend on the other rows.
_ROW_WISE_LOADERS = frozenset(
    {"mlflow.sklearn", "cairn.models.flavors.sklearn", "cairn.models.flavors.river"}
)
# Exceptions a model raises for input it cannot score: the caller's to fix (400, not 500).
_INPUT_FAILURES = (ValueError, TypeError, KeyError, IndexError)


@dataclass(eq=False, slots=True)
class Job:
    """One request for the model: decoded already (small JSON) or still a raw body."""

    learn: bool
    payload: Payload | None = None
    body: bytes = b""
    media: str = "json"
    key: tuple[Any, ...] | None = None  # equal keys can be merged into one table
    future: asyncio.Future[bytes] | None = field(default=None, repr=False)


def predicts_row_by_row(model: PyFuncModel) -> bool:
    """Whether a row's prediction is independent of the other rows scored with it."""
    try:
        return model.loader_module in _ROW_WISE_LOADERS
    except CairnError:
        return False


class Scorer:
    """Runs a model's predict and learn on one worker thread, merging what queues up."""

    def __init__(self, model: PyFuncModel, *, micro_batching: bool = True) -> None:
        self.model = model
        self.schema = model.input_schema
        self.micro_batching = micro_batching and predicts_row_by_row(model)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cairn-scoring")
        self._queue: deque[Job] = deque()
        self._busy = False

    async def submit(self, job: Job, timeout: float | None = None) -> bytes:
        """The response body for ``job``; raises the ``CairnError`` it failed with."""
        loop = asyncio.get_running_loop()
        job.future = loop.create_future()
        self._queue.append(job)
        if not self._busy:
            self._dispatch(loop)
        return await asyncio.wait_for(job.future, timeout)

    def run_now(self, job: Job) -> bytes:
        """Score ``job`` on the worker thread and wait (warm-up, scripts)."""
        result = self._executor.submit(self._run, [job]).result()[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- event-loop side ----------------------------------------------------------------------

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand everything queued to the worker; a learn request goes alone, in order."""
        jobs: list[Job] = []
        while self._queue:
            job = self._queue[0]
            assert job.future is not None
            if job.future.done():  # timed out while waiting
                self._queue.popleft()
                continue
            if job.learn and jobs:
                break
            jobs.append(self._queue.popleft())
            if job.learn:
                break
        self._busy = bool(jobs)
        if jobs:
            done = loop.run_in_executor(self._executor, self._run, jobs)
            done.add_done_callback(functools.partial(self._finish, loop, jobs))

    def _finish(
        self, loop: asyncio.AbstractEventLoop, jobs: list[Job], done: asyncio.Future[Any]
    ) -> None:
        try:
            results: list[bytes | BaseException] = done.result()
        except BaseException as exc:  # the executor was shut down
            results = [exc] * len(jobs)
        for job, result in zip(jobs, results, strict=True):
            assert job.future is not None
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        self._dispatch(loop)

    # -- worker-thread side -------------------------------------------------------------------

    def _run(self, jobs: list[Job]) -> list[bytes | BaseException]:
        results: list[bytes | BaseException] = [b""] * len(jobs)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, job in enumerate(jobs):
            if self.micro_batching and job.key is not None and not job.learn:
                groups.setdefault(job.key, []).append(index)
            else:
                results[index] = self._one(job)
        for indexes in groups.values():
            group = [jobs[index] for index in indexes]
            merged = self._merged(group) if len(group) > 1 else [self._one(group[0])]
            for index, result in zip(indexes, merged, strict=True):
                results[index] = result
        return results

    def _one(self, job: Job) -> bytes | BaseException:
        try:
            payload = job.payload or _decode(job)
            data = to_model_input(payload, self.schema)
            if job.learn:
                return json_bytes({"learned": self.model.learn(data, payload.targets)})
            predictions = self.model.predict(data, params=payload.params)
        except CairnError as exc:
            return exc
        except Exception as exc:
            return _model_failure(exc)
        return _encoded(predictions)

    def _merged(self, jobs: list[Job]) -> list[bytes | BaseException]:
        payloads = [job.payload for job in jobs if job.payload is not None]
        try:
            predictions = self.model.predict(to_model_input(merge(payloads), self.schema))
            parts = _split(predictions, [row_count(payload) for payload in payloads])
        except Exception:
            parts = None
        if parts is None or len(payloads) != len(jobs):
            return [self._one(job) for job in jobs]
        return [_encoded(part) for part in parts]


def _decode(job: Job) -> Payload:
    if job.media == "csv":
        if job.learn:
            raise ModelInputError("/learn takes JSON with targets, not CSV")
        return decode_csv(job.body)
    return decode_json(job.body, learn=job.learn)


def _split(predictions: Any, counts: list[int]) -> list[Any] | None:
    """``predictions`` cut into consecutive parts of ``counts`` rows; None if it cannot be."""
    if not hasattr(predictions, "__len__") or isinstance(predictions, dict | str):
        return None
    if len(predictions) != sum(counts):
        return None
    rows = predictions.iloc if hasattr(predictions, "iloc") else predictions
    parts = []
    start = 0
    for count in counts:
        parts.append(rows[start : start + count])
        start += count
    return parts


def _encoded(predictions: Any) -> bytes | BaseException:
    try:
        return predictions_json(predictions)
    except (TypeError, ValueError) as exc:  # the model returned what JSON cannot hold
        _log.error("the model's predictions cannot be written as JSON", exc_info=exc)
        return CairnError(f"the model's predictions cannot be written as JSON: {exc}")


def _model_failure(exc: Exception) -> CairnError:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, _INPUT_FAILURES):
        return ModelInputError(f"the model could not score this input: {detail}")
    _log.error("the model failed while scoring", exc_info=exc)
    return CairnError(f"the model failed while scoring: {detail}")

"""Asynchronous, batched logging: calls return at once, a background thread writes batches.

Writes are serialised by one lock, so a ``flush()`` in the caller's thread and the background
thread never reorder values. An error in the background is kept and raised by the next flush.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from cairn.entities import Metric, Param, RunTag
from cairn.errors import CairnError, InvalidParameterError

if TYPE_CHECKING:
    from cairn.tracking.stores.base import TrackingStore

__all__ = ["AsyncLogger"]

_Item = tuple[str, Metric | Param | RunTag]


class AsyncLogger:
    """Queue of metrics, params and tags per run, drained in batches to a store."""

    def __init__(self, store: TrackingStore, interval: float = 0.2, batch_size: int = 2000) -> None:
        self._store = store
        self._interval = interval
        self._batch_size = batch_size
        self._pending: collections.deque[_Item] = collections.deque()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._errors: list[Exception] = []
        self._params: dict[str, dict[str, str]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, run_id: str, entity: Metric | Param | RunTag) -> None:
        if type(entity) is Param:
            seen = self._params.setdefault(run_id, {})
            previous = seen.setdefault(entity.key, entity.value)
            if previous != entity.value:
                raise InvalidParameterError(
                    f"Param '{entity.key}' of run '{run_id}' is already {previous!r} and cannot "
                    f"be changed to {entity.value!r}: params are write-once"
                )
        self._pending.append((run_id, entity))
        if self._thread is None:
            self._start()
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    def _start(self) -> None:
        with self._write_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="cairn-async-logger", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        with self._write_lock:
            pending = self._pending
            items: list[_Item] = []
            try:
                while True:
                    items.append(pending.popleft())
            except IndexError:
                pass
            if items:
                self._write(items)

    def _write(self, items: list[_Item]) -> None:
        batches: dict[str, tuple[list[Metric], list[Param], list[RunTag]]] = {}
        for run_id, entity in items:
            batch = batches.get(run_id)
            if batch is None:
                batch = batches[run_id] = ([], [], [])
            kind = type(entity)
            if kind is Metric:
                batch[0].append(entity)  # type: ignore[arg-type]
            elif kind is Param:
                batch[1].append(entity)  # type: ignore[arg-type]
            else:
                batch[2].append(entity)  # type: ignore[arg-type]
        for run_id, (metrics, params, tags) in batches.items():
            try:
                self._store.log_batch(run_id, metrics, params, tags)
            except CairnError as exc:
                if sum(map(bool, (metrics, params, tags))) < 2:
                    self._errors.append(exc)
                    continue
                # One bad part (say, a param conflict) must not drop the others.
                parts: tuple[tuple[list[Metric], list[Param], list[RunTag]], ...] = (
                    (metrics, [], []),
                    ([], params, []),
                    ([], [], tags),
                )
                for part in parts:
                    try:
                        self._store.log_batch(run_id, *part)
                    except Exception as part_exc:
                        self._errors.append(part_exc)
            except Exception as exc:
                self._errors.append(exc)

    def flush(self) -> None:
        """Write everything pending now, then raise the first background error, if any."""
        self._drain()
        if self._errors:
            errors, self._errors = self._errors, []
            first = errors[0]
            if len(errors) > 1:
                first.add_note(f"{len(errors) - 1} more logging error(s) happened after this one")
            raise first

    def forget(self, run_id: str) -> None:
        self._params.pop(run_id, None)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()

"""RestStore: the tracking store behind a tracking server, over MLflow's REST API 2.0.

The transport (pooled keep-alive client, retries, error mapping) is ``stores/_http.py``.

When the server cannot be reached, run creation and logging go to the offline spool
(``cairn.tracking._spool``); a background thread uploads them once the server is back.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import posixpath
import sys
import threading
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cairn.entities import PagedList, Run, RunData, RunInfo, RunStatus
from cairn.errors import (
    CairnError,
    InvalidParameterError,
    NotFoundError,
    UnavailableError,
)
from cairn.tracking import _spool
from cairn.tracking._validation import (
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
    MAX_BATCH_TOTAL,
)
from cairn.tracking._wire import (
    dataset_input_to_json,
    experiment_from_json,
    metric_from_json,
    metric_to_json,
    run_from_json,
    run_info_from_json,
)
from cairn.tracking.stores._http import (
    ENV_HTTP_TIMEOUT,
    ENV_RETRY_SECONDS,
    HttpSession,
    _env_seconds,
    error_from_response,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from cairn.entities import (
        DatasetInput,
        Experiment,
        ExperimentTag,
        Metric,
        Param,
        RunTag,
        ViewType,
    )

__all__ = [
    "ENV_HTTP_TIMEOUT",
    "ENV_OFFLINE_LOGGING",
    "ENV_RETRY_SECONDS",
    "ENV_SPOOL_REPLAY_SECONDS",
    "HttpSession",
    "RestStore",
    "error_from_response",
]

ENV_OFFLINE_LOGGING = "CAIRN_OFFLINE_LOGGING"
ENV_SPOOL_REPLAY_SECONDS = "CAIRN_SPOOL_REPLAY_SECONDS"
DEFAULT_REPLAY_SECONDS = 5.0

MLFLOW_API = "/api/2.0/mlflow"
CAIRN_API = "/api/2.0/cairn"
RUN_NAME_TAG = "mlflow.runName"
_INFO_CACHE_SIZE = 1024

_log = logging.getLogger("cairn.tracking")


def _batches(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> Iterator[tuple[Sequence[Metric], Sequence[Param], Sequence[RunTag]]]:
    """Split a batch to fit one REST request (1000 metrics, 100 params, 100 tags, 1000 in all)."""
    m = p = t = 0
    while m < len(metrics) or p < len(params) or t < len(tags):
        chunk_params = params[p : p + MAX_BATCH_PARAMS]
        chunk_tags = tags[t : t + MAX_BATCH_TAGS]
        room = min(MAX_BATCH_METRICS, MAX_BATCH_TOTAL - len(chunk_params) - len(chunk_tags))
        chunk_metrics = metrics[m : m + room]
        p, t, m = p + len(chunk_params), t + len(chunk_tags), m + len(chunk_metrics)
        yield chunk_metrics, chunk_params, chunk_tags


def _key_values(items: Sequence[Param] | Sequence[RunTag] | Sequence[ExperimentTag]) -> list[Any]:
    return [{"key": item.key, "value": item.value} for item in items]


class RestStore:
    """Experiments and runs on a tracking server; writes are spooled while it is unreachable.

    Args:
        base_url: the server, ``http(s)://host:port[/prefix]``.
        retry_seconds: how long one request keeps retrying ($CAIRN_HTTP_RETRY_SECONDS, 10 s).
        spool_dir: where the offline spool lives ($CAIRN_SPOOL_DIR, ``~/.cairn/spool``).
        offline_logging: spool writes the server cannot take ($CAIRN_OFFLINE_LOGGING, on).
        background_replay: upload the spool from a background thread while it holds anything.
    """

    def __init__(
        self,
        base_url: str,
        *,
        retry_seconds: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        offline_logging: bool | None = None,
        background_replay: bool = True,
    ) -> None:
        from cairn._config import env_flag

        self.base_url = base_url.rstrip("/")
        self.session = HttpSession(self.base_url, retry_seconds)
        self.offline_logging = (
            env_flag(ENV_OFFLINE_LOGGING, True) if offline_logging is None else offline_logging
        )
        self.spool_path = _spool.spool_path(self.base_url, spool_dir)
        self._spool: _spool.Spool | None = None
        self._spool_lock = threading.Lock()
        self._offline = False
        self._own_backlog = False  # this process spooled writes its own reads must see
        self._cairn_api = True
        self._infos: dict[str, RunInfo] = {}
        self._infos_lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._background = background_replay
        self._replay_seconds = _env_seconds(ENV_SPOOL_REPLAY_SECONDS, DEFAULT_REPLAY_SECONDS)
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._exit_hook = False
        if self.offline_logging:
            self._spool = _spool.Spool.open_existing(self.spool_path)
            if self._spool is not None and self._spool.has_backlog():
                self._ensure_replayer()

    def __repr__(self) -> str:
        return f"RestStore({self.base_url!r})"

    @property
    def default_artifact_root(self) -> str:
        return ""

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.session.close()
        with self._spool_lock:
            if self._spool is not None:
                self._spool.close()
                self._spool = None

    # -- plumbing -------------------------------------------------------------------------------

    def _unreachable(self, error: UnavailableError) -> UnavailableError:
        message = error.message
        if self.offline_logging:
            spool = self._spool
            waiting = spool.pending_count() if spool is not None else 0
            message += (
                f". Runs, params, metrics and tags logged meanwhile are kept in the local spool "
                f"{self.spool_path} ({waiting} operation(s) waiting) and uploaded when the "
                "server is back, or with `cairn sync`"
            )
        wrapped = UnavailableError(message)
        wrapped.http_status, wrapped.error_code = error.http_status, error.error_code
        return wrapped

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A request that is never spooled (reads, experiments, deletes); sees spooled writes.

        While the server is known to be down it fails after one attempt instead of retrying.
        """
        if self._offline:
            try:
                data = self.session.call(method, path, params=params, body=body, retry=False)
            except UnavailableError as exc:
                raise self._unreachable(exc) from exc
            except CairnError:
                self._offline = False  # it answered, so it is back
                raise
            self._offline = False
            if not self._settle():
                return data
        else:
            self._settle()
        try:
            return self.session.call(method, path, params=params, body=body)
        except UnavailableError as exc:
            raise self._unreachable(exc) from exc

    def _settle(self) -> bool:
        """Upload this process's spooled writes before it reads, if the server is believed up
        (older backlogs are left to the background thread); True if there were any."""
        spool = self._spool
        if spool is None or self._offline or not self._own_backlog:
            return False
        if not spool.pending_count():
            self._own_backlog = False
            return False
        self.replay()
        return True

    def _open_spool(self) -> _spool.Spool:
        with self._spool_lock:
            if self._spool is None:
                self._spool = _spool.Spool(self.spool_path)
            return self._spool

    def _existing_spool(self) -> _spool.Spool | None:
        if self._spool is None and self.spool_path.exists():
            return self._open_spool()
        return self._spool

    def _enqueue(
        self, kind: str, run_id: str, body: dict[str, Any], counts: tuple[int, int, int]
    ) -> None:
        self._open_spool().append(kind, run_id, body, counts)
        self._own_backlog = True
        self._ensure_replayer()

    def _should_spool(self, *run_ids: str | None) -> bool:
        spool = self._spool
        if spool is None:
            return False
        return self._offline or any(spool.has_pending(r) for r in run_ids if r)

    def _server_run_id(self, run_id: str, settle: bool = True) -> str:
        """The server's id for a run, which may have been created offline."""
        if not _spool.is_offline_id(run_id):
            return run_id
        spool = self._existing_spool()
        if spool is None:
            raise NotFoundError(
                f"Run '{run_id}' does not exist: it is not in the offline spool {self.spool_path}"
            )
        if settle:
            self._settle()
        server_id = spool.server_id(run_id)
        if server_id is not None:
            return server_id
        failure = spool.creation_failure(run_id)
        if failure is not None or spool.local_run_info(run_id) is None:
            raise NotFoundError(
                f"Run '{run_id}' was created offline and the server refused it: "
                f"{failure or 'unknown run'}; see `cairn sync --status`"
            )
        raise UnavailableError(
            f"Run '{run_id}' was created while the tracking server at {self.base_url} was "
            f"unreachable; it waits in the local spool {self.spool_path} and can be read once "
            "it is uploaded (automatically when the server is back, or with `cairn sync`)"
        )

    def _remember(self, info: RunInfo) -> None:
        with self._infos_lock:
            self._infos.pop(info.run_id, None)
            self._infos[info.run_id] = info
            if len(self._infos) > _INFO_CACHE_SIZE:
                del self._infos[next(iter(self._infos))]

    def _post_idempotent(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to Cairn's request-id endpoint; a plain MLflow server gets MLflow's instead."""
        if self._cairn_api:
            try:
                return self.session.call("POST", f"{CAIRN_API}/{endpoint}", body=body)
            except CairnError as exc:
                missing = exc.http_status in (404, 405)
                if not missing or exc.error_code == NotFoundError.error_code:
                    raise
                _log.warning(
                    "%s has no %s endpoint (not a Cairn server?): retried logging calls may be "
                    "applied twice",
                    self.base_url,
                    f"{CAIRN_API}/{endpoint}",
                )
                self._cairn_api = False
        return self.session.call("POST", f"{MLFLOW_API}/{endpoint}", body=body)

    def _send_op(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Perform one spoolable write against the server."""
        if kind == _spool.CREATE_RUN:
            return self._post_idempotent("runs/create", body)
        if kind == _spool.LOG_BATCH:
            return self._post_idempotent("runs/log-batch", body)
        if kind == _spool.UPDATE_RUN:
            return self.session.call("POST", f"{MLFLOW_API}/runs/update", body=body)
        if kind == _spool.DELETE_TAG:
            return self.session.call("POST", f"{MLFLOW_API}/runs/delete-tag", body=body)
        if kind == _spool.LOG_INPUTS:  # datasets already linked are linked once
            return self.session.call("POST", f"{MLFLOW_API}/runs/log-inputs", body=body)
        raise InvalidParameterError(f"Unknown spooled operation {kind!r}")

    def _write(
        self,
        kind: str,
        run_id: str,
        body: dict[str, Any],
        counts: tuple[int, int, int] = (0, 0, 0),
    ) -> dict[str, Any] | None:
        """Send a write now; spool it (and return None) when the server cannot take it, or when
        earlier writes of the same run still wait in the spool (order is kept per run)."""
        if self._should_spool(run_id):
            self._enqueue(kind, run_id, body, counts)
            return None
        live = dict(body, run_id=self._server_run_id(run_id, settle=False))
        try:
            return self._send_op(kind, live)
        except UnavailableError:
            if not self.offline_logging:
                raise
            self._offline = True
            self._enqueue(kind, run_id, body, counts)
            return None

    # -- replay ---------------------------------------------------------------------------------

    def replay(self) -> _spool.ReplayReport:
        """Upload everything spooled for this server now, oldest first; safe to repeat."""
        spool = self._existing_spool()
        if spool is None:
            return _spool.ReplayReport()
        with self._replay_lock:
            report = _spool.replay(spool, self._send_op, self._upload_artifacts)
        self._offline = report.interrupted is not None
        return report

    def requeue_failed(self) -> int:
        """Put operations the server refused back in line (after fixing the cause)."""
        spool = self._existing_spool()
        return spool.requeue_failed() if spool is not None else 0

    def _upload_artifacts(self, uri: str, files: list[Path], folder: Path) -> int:
        from cairn.tracking._http_artifacts import HttpArtifactRepository, is_proxy_uri
        from cairn.tracking.artifacts import ArtifactRepository, get_artifact_repository

        repository: ArtifactRepository
        if is_proxy_uri(uri):
            repository = HttpArtifactRepository(uri, base_url=self.base_url, session=self.session)
        else:
            repository = get_artifact_repository(uri)

        def put(path: Path, rel: str) -> None:
            repository.log_artifact(path, posixpath.dirname(rel) or None)

        return _spool.upload_folder_files(files, folder, put)

    def _ensure_replayer(self) -> None:
        if not self._exit_hook:
            self._exit_hook = True
            atexit.register(self._report_backlog_at_exit)
        if not self._background or self._closed:
            return
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._replay_loop, name="cairn-spool-replay", daemon=True
                )
                self._thread.start()

    def _replay_loop(self) -> None:
        while True:
            self._wake.wait(self._replay_seconds)
            self._wake.clear()
            done = False
            if not self._closed:
                try:
                    report = self.replay()
                    done = report.interrupted is None
                except Exception as exc:  # keep the thread alive; the spool keeps the data
                    _log.warning("replaying the offline spool failed: %s", exc)
            with self._thread_lock:
                spool = self._spool
                if self._closed or (done and (spool is None or not spool.has_backlog())):
                    self._thread = None
                    return

    def _report_backlog_at_exit(self) -> None:
        spool = self._spool
        with contextlib.suppress(Exception):
            if spool is not None and (self._offline or spool.has_backlog()):
                print(
                    f"cairn: the tracking server {self.base_url} could not take everything "
                    f"logged; it waits in the offline spool {self.spool_path} and is uploaded "
                    "the next time Cairn reaches the server, or run `cairn sync`",
                    file=sys.stderr,
                )

    # -- experiments ----------------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        body: dict[str, Any] = {"name": name, "tags": _key_values(tags)}
        if artifact_location:
            body["artifact_location"] = artifact_location
        data = self._call("POST", f"{MLFLOW_API}/experiments/create", body=body)
        return str(data["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        data = self._call(
            "GET", f"{MLFLOW_API}/experiments/get", params={"experiment_id": experiment_id}
        )
        return experiment_from_json(data["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            data = self._call(
                "GET", f"{MLFLOW_API}/experiments/get-by-name", params={"experiment_name": name}
            )
        except NotFoundError as exc:
            if exc.error_code == NotFoundError.error_code:
                return None
            raise
        return experiment_from_json(data["experiment"])

    def search_experiments(
        self,
        view_type: ViewType,
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> PagedList[Experiment]:
        body: dict[str, Any] = {"max_results": max_results, "view_type": view_type.value}
        if page_token:
            body["page_token"] = page_token
        if name_like:
            body["filter"] = f"name LIKE '{name_like}'"
        data = self._call("POST", f"{MLFLOW_API}/experiments/search", body=body)
        return PagedList(
            [experiment_from_json(e) for e in data.get("experiments") or []],
            data.get("next_page_token") or None,
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        body = {"experiment_id": experiment_id, "new_name": new_name}
        self._call("POST", f"{MLFLOW_API}/experiments/update", body=body)

    def delete_experiment(self, experiment_id: str) -> None:
        body = {"experiment_id": experiment_id}
        self._call("POST", f"{MLFLOW_API}/experiments/delete", body=body)

    def restore_experiment(self, experiment_id: str) -> None:
        body = {"experiment_id": experiment_id}
        self._call("POST", f"{MLFLOW_API}/experiments/restore", body=body)

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        body = {"experiment_id": experiment_id, "key": tag.key, "value": tag.value}
        self._call("POST", f"{MLFLOW_API}/experiments/set-experiment-tag", body=body)

    # -- runs -----------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag],
        run_name: str,
        request_id: str | None = None,
    ) -> Run:
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": user_id,
            "start_time": start_time,
            "tags": _key_values(tags),
            "run_name": run_name,
            "request_id": request_id or uuid.uuid4().hex,
        }
        parent = next((tag.value for tag in tags if tag.key == _spool.PARENT_RUN_TAG), None)
        if not self._should_spool(parent):
            live = dict(body)
            if parent and _spool.is_offline_id(parent):
                live["tags"] = [dict(tag) for tag in body["tags"]]
                for tag in live["tags"]:
                    if tag["key"] == _spool.PARENT_RUN_TAG:
                        tag["value"] = self._server_run_id(parent, settle=False)
            try:
                run = run_from_json(self._send_op(_spool.CREATE_RUN, live)["run"])
            except UnavailableError:
                if not self.offline_logging:
                    raise
                self._offline = True
            else:
                self._remember(run.info)
                return run
        spool = self._open_spool()
        run_id = _spool.new_offline_id()
        info = RunInfo(
            run_id=run_id,
            experiment_id=experiment_id,
            run_name=run_name,
            user_id=user_id,
            status=RunStatus.RUNNING,
            start_time=start_time,
            end_time=None,
            artifact_uri=str(spool.artifact_dir(run_id)),
        )
        spool.add_offline_run(info, body, len(tags))
        self._own_backlog = True
        self._ensure_replayer()
        tag_map = {tag.key: tag.value for tag in tags}
        tag_map[RUN_NAME_TAG] = run_name
        return Run(info, RunData(tags=tag_map))

    def get_run(self, run_id: str) -> Run:
        target = self._server_run_id(run_id)
        data = self._call("GET", f"{MLFLOW_API}/runs/get", params={"run_id": target})
        run = run_from_json(data["run"])
        self._remember(run.info)
        return run

    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None,
        end_time: int | None,
        run_name: str | None = None,
    ) -> RunInfo:
        body: dict[str, Any] = {"run_id": run_id, "request_id": uuid.uuid4().hex}
        if status is not None:
            body["status"] = status.value
        if end_time is not None:
            body["end_time"] = end_time
        if run_name:
            body["run_name"] = run_name
        result = self._write(_spool.UPDATE_RUN, run_id, body)
        if result is not None:
            data = result.get("run_info")
            info = run_info_from_json(data) if data else self.get_run(run_id).info
            self._remember(info)
            return info
        if status is not None and status.is_terminated and not self._offline:
            # The server is up but this run's earlier writes wait: upload them as the run ends.
            with contextlib.suppress(CairnError):
                self.replay()
        return self._spooled_info(run_id, status, end_time, run_name)

    def _spooled_info(
        self, run_id: str, status: RunStatus | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        """What a spooled update makes of the run, as far as this client knows it."""
        spool = self._spool
        if spool is not None and _spool.is_offline_id(run_id):
            info = spool.update_local_run(run_id, status, end_time, run_name)
            if info is not None:
                return info
        with self._infos_lock:
            known = self._infos.get(run_id)
        info = known or RunInfo(run_id, "", run_name or "", "", RunStatus.RUNNING, 0, None, "")
        if status is not None:
            info = replace(info, status=status, end_time=end_time if status.is_terminated else None)
        if run_name:
            info = replace(info, run_name=run_name)
        self._remember(info)
        return info

    def delete_run(self, run_id: str) -> None:
        body = {"run_id": self._server_run_id(run_id)}
        self._call("POST", f"{MLFLOW_API}/runs/delete", body=body)

    def restore_run(self, run_id: str) -> None:
        body = {"run_id": self._server_run_id(run_id)}
        self._call("POST", f"{MLFLOW_API}/runs/restore", body=body)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        request_id: str | None = None,
    ) -> None:
        """Log values in requests of REST size; each request is applied at most once.

        A caller's ``request_id`` names the first request; the others derive theirs from it
        (``<id>.1``, ``<id>.2`` ...), so the caller repeating the call duplicates nothing.
        """
        chunks = _batches(metrics, params, tags)
        for index, (chunk_metrics, chunk_params, chunk_tags) in enumerate(chunks):
            if request_id is None:
                chunk_id = uuid.uuid4().hex
            else:
                chunk_id = f"{request_id}.{index}" if index else request_id
            body = {
                "run_id": run_id,
                "metrics": [metric_to_json(metric) for metric in chunk_metrics],
                "params": _key_values(chunk_params),
                "tags": _key_values(chunk_tags),
                "request_id": chunk_id,
            }
            counts = (len(chunk_metrics), len(chunk_params), len(chunk_tags))
            self._write(_spool.LOG_BATCH, run_id, body, counts)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        if not datasets:
            return
        body = {
            "run_id": run_id,
            "datasets": [dataset_input_to_json(item) for item in datasets],
            "request_id": uuid.uuid4().hex,
        }
        self._write(_spool.LOG_INPUTS, run_id, body)

    def delete_tag(self, run_id: str, key: str) -> None:
        body = {"run_id": run_id, "key": key, "request_id": uuid.uuid4().hex}
        self._write(_spool.DELETE_TAG, run_id, body)

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        params: dict[str, Any] = {"run_id": self._server_run_id(run_id), "metric_key": key}
        metrics: list[Metric] = []
        token = page_token
        while True:
            params.update(max_results=max_results, page_token=token)
            data = self._call("GET", f"{MLFLOW_API}/metrics/get-history", params=params)
            metrics.extend(metric_from_json({"key": key, **m}) for m in data.get("metrics") or [])
            token = data.get("next_page_token") or None
            if max_results is not None or token is None:
                return PagedList(metrics, token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        view_type: ViewType,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Run]:
        body: dict[str, Any] = {
            "experiment_ids": list(experiment_ids),
            "run_view_type": view_type.value,
            "max_results": max_results,
        }
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if page_token:
            body["page_token"] = page_token
        data = self._call("POST", f"{MLFLOW_API}/runs/search", body=body)
        return PagedList(
            [run_from_json(run) for run in data.get("runs") or []],
            data.get("next_page_token") or None,
        )

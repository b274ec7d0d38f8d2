"""The fluent API: a per-thread stack of active runs over one TrackingClient.

``import cairn`` re-exports these functions lazily; they are the everyday way to log.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Literal, overload

from cairn import _config
from cairn.entities import LifecycleStage, Metric, Param, Run, RunStatus, RunTag, ViewType
from cairn.errors import InvalidParameterError, InvalidStateError, NotFoundError
from cairn.tracking.client import TrackingClient, make_metric, make_param, make_tag

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

    import pandas as pd

    from cairn.entities import Experiment, FileInfo, RunData, RunInfo
    from cairn.tracking._batching import AsyncLogger

__all__ = [
    "ActiveRun",
    "active_run",
    "create_experiment",
    "delete_tag",
    "download_artifacts",
    "end_run",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "list_artifacts",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
]

ENV_RUN_ID = "CAIRN_RUN_ID"
# Set by `cairn run` beside CAIRN_RUN_ID: the launcher ends the run, and with several ranks
# (RANK) rank 0 owns the params while other ranks' metrics carry their rank.
ENV_RUN_MANAGED = "CAIRN_RUN_MANAGED"
ENV_RANK = "RANK"
ENV_EXPERIMENT_ID = "CAIRN_EXPERIMENT_ID"
ENV_EXPERIMENT_NAME = "CAIRN_EXPERIMENT_NAME"
PARENT_RUN_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"

_state_lock = threading.RLock()
_client: TrackingClient | None = None
_logger: AsyncLogger | None = None
_experiment_id: str | None = None
_local = threading.local()
_all_stacks: list[list[ActiveRun]] = []


class ActiveRun:
    """The run a ``with cairn.start_run()`` block logs to; ends it on exit (FAILED on error)."""

    def __init__(self, run: Run, managed: bool = False, rank: int = 0) -> None:
        self._run = run
        self._managed = managed
        self._metric_suffix = f"/rank{rank}" if rank else ""
        self._owns_params = rank == 0

    @property
    def info(self) -> RunInfo:
        return self._run.info

    @property
    def data(self) -> RunData:
        return self._run.data

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self.info.run_id!r} name={self.info.run_name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        stack = _stack()
        ids = [active.info.run_id for active in stack]
        if self.info.run_id in ids:
            # Runs nested inside this one and left open end with it.
            while stack and stack[-1].info.run_id != self.info.run_id:
                end_run(status)
            end_run(status)


def _stack() -> list[ActiveRun]:
    stack: list[ActiveRun] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
        with _state_lock:
            _all_stacks.append(stack)
    return stack


def _get_client() -> TrackingClient:
    global _client, _logger
    uri = _config.get_tracking_uri()
    client = _client
    if client is not None and client.tracking_uri == uri:
        return client
    with _state_lock:
        if _client is None or _client.tracking_uri != uri:
            if _logger is not None:
                _logger.flush()
                _logger = None
            _client = TrackingClient(uri)
        return _client


def _get_logger() -> AsyncLogger:
    global _logger
    logger = _logger
    if logger is None:
        from cairn.tracking._batching import AsyncLogger

        client = _get_client()
        with _state_lock:
            if _logger is None:
                _logger = AsyncLogger(client.store)
            logger = _logger
    return logger


def _flush_pending() -> None:
    if _logger is not None:
        _logger.flush()


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Log to ``uri`` (a folder, ``sqlite:///PATH``, ``postgresql://...``) from now on."""
    _flush_pending()
    _config.set_tracking_uri(uri)


def get_tracking_uri() -> str:
    return _config.get_tracking_uri()


# -- experiments ------------------------------------------------------------------------------


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    """Create an experiment and return its id."""
    return _get_client().create_experiment(name, artifact_location, tags)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the default for new runs, creating it by name when missing."""
    global _experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterError("Give exactly one of experiment_name or experiment_id")
    client = _get_client()
    if experiment_id is not None:
        experiment = client.get_experiment(experiment_id)
    else:
        assert experiment_name is not None
        found = client.get_experiment_by_name(experiment_name)
        if found is None:
            experiment = client.get_experiment(client.create_experiment(experiment_name))
        else:
            experiment = found
    if experiment.lifecycle_stage is LifecycleStage.DELETED:
        raise InvalidStateError(
            f"Experiment '{experiment.name}' (id {experiment.experiment_id}) is deleted; restore "
            f"it with `cairn experiments restore {experiment.experiment_id}` or pick another name"
        )
    _experiment_id = experiment.experiment_id
    return experiment


def get_experiment(experiment_id: str) -> Experiment:
    return _get_client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _get_client().get_experiment_by_name(name)


def _default_experiment_id(client: TrackingClient) -> str:
    if _experiment_id is not None:
        return _experiment_id
    if os.environ.get(ENV_EXPERIMENT_ID):
        return os.environ[ENV_EXPERIMENT_ID]
    name = os.environ.get(ENV_EXPERIMENT_NAME)
    if name:
        return set_experiment(name).experiment_id
    return "0"


# -- runs -------------------------------------------------------------------------------------


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_info: bool = True,
) -> ActiveRun:
    """Start a new run, or resume ``run_id``, and make it the active run.

    Args:
        run_id: resume this run (also taken from ``$CAIRN_RUN_ID`` for the outermost run).
        experiment_id: the experiment for a new run; defaults to ``set_experiment``'s.
        run_name: a readable name; a random one otherwise.
        nested: start a child of the active run instead of refusing.
        tags: tags to set at start.
        description: a note shown with the run.
        log_system_info: record interpreter, platform, host, script, git commit and packages.
    """
    client = _get_client()
    stack = _stack()
    if stack and not nested:
        raise InvalidStateError(
            f"Run '{stack[-1].info.run_id}' is already active. End it with cairn.end_run(), "
            "or start a child run with cairn.start_run(nested=True)"
        )
    managed = False
    if run_id is None and not stack:
        run_id = os.environ.get(ENV_RUN_ID) or None
        managed = run_id is not None and _config.env_flag(ENV_RUN_MANAGED, False)
    if run_id is not None:
        run = _resume(client, run_id, run_name, tags)
    else:
        all_tags: dict[str, Any] = {}
        capture = log_system_info and _config.env_flag(_config.ENV_CAPTURE_ENVIRONMENT, True)
        if capture:
            from cairn.tracking._environment import system_tags

            all_tags.update(system_tags())
        if stack:
            all_tags[PARENT_RUN_TAG] = stack[-1].info.run_id
        if description:
            all_tags[NOTE_TAG] = description
        all_tags.update(tags or {})
        run = client.create_run(
            experiment_id or _default_experiment_id(client), tags=all_tags, run_name=run_name
        )
        if capture:
            from cairn.tracking._environment import PACKAGES_ARTIFACT, installed_packages
            from cairn.tracking.artifacts import get_artifact_repository

            repository = get_artifact_repository(run.info.artifact_uri)
            repository.write_text(PACKAGES_ARTIFACT, installed_packages())
    active = ActiveRun(run, managed, _launcher_rank() if managed else 0)
    stack.append(active)
    return active


def _launcher_rank() -> int:
    try:
        return max(int(os.environ.get(ENV_RANK) or 0), 0)
    except ValueError:
        return 0


def _resume(
    client: TrackingClient, run_id: str, run_name: str | None, tags: Mapping[str, Any] | None
) -> Run:
    run = client.get_run(run_id)
    if run.info.lifecycle_stage is LifecycleStage.DELETED:
        raise InvalidStateError(
            f"Run '{run_id}' is deleted; restore it (`cairn runs restore {run_id}`) to resume it"
        )
    if any(active.info.run_id == run_id for active in _stack()):
        raise InvalidStateError(f"Run '{run_id}' is already active")
    client.update_run(run_id, RunStatus.RUNNING, name=run_name)
    if tags:
        client.log_batch(run_id, tags=[make_tag(k, val) for k, val in tags.items()])
    return client.get_run(run_id)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """Flush pending values and end the active run with ``status``; a no-op without one."""
    stack = _stack()
    if not stack:
        return
    active = stack[-1]
    client = _get_client()
    try:
        _flush_pending()
    finally:
        stack.pop()
        if _logger is not None:
            _logger.forget(active.info.run_id)
        if not active._managed:
            client.set_terminated(active.info.run_id, status)


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def _active() -> ActiveRun:
    stack = _stack()
    if stack:
        return stack[-1]
    return start_run()


def _active_run_id() -> str:
    return _active().info.run_id


def get_run(run_id: str) -> Run:
    _flush_pending()
    return _get_client().get_run(run_id)


# -- logging ----------------------------------------------------------------------------------


def _log(run_id: str, entities: Sequence[Metric | Param | RunTag]) -> None:
    """Queue values for the background writer, or write them now when logging is synchronous."""
    if _config.async_logging_enabled():
        logger = _get_logger()
        for entity in entities:
            logger.submit(run_id, entity)
        return
    metrics = [e for e in entities if type(e) is Metric]
    params = [e for e in entities if type(e) is Param]
    tags = [e for e in entities if type(e) is RunTag]
    _get_client().store.log_batch(run_id, metrics, params, tags)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one value of a metric at ``step`` (default 0) to the active run."""
    active = _active()
    key += active._metric_suffix
    _log(active.info.run_id, [make_metric(key, value, timestamp, step)])


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Log several metrics at one step; one batch when synchronous."""
    active = _active()
    suffix = active._metric_suffix
    entities = [make_metric(k + suffix, val, timestamp, step) for k, val in metrics.items()]
    _log(active.info.run_id, entities)


def log_param(key: str, value: Any) -> Any:
    """Log a param (write-once: the same value again is fine, another value is an error)."""
    log_params({key: value})
    return value


def log_params(params: Mapping[str, Any]) -> None:
    active = _active()
    entities = [make_param(k, val) for k, val in params.items()]
    if active._owns_params:
        _log(active.info.run_id, entities)


def set_tag(key: str, value: Any) -> None:
    _log(_active_run_id(), [make_tag(key, value)])


def set_tags(tags: Mapping[str, Any]) -> None:
    run_id = _active_run_id()
    _log(run_id, [make_tag(k, val) for k, val in tags.items()])


def delete_tag(key: str) -> None:
    run_id = _active_run_id()
    _flush_pending()
    _get_client().delete_tag(run_id, key)


def flush() -> None:
    """Write every pending value now; raises the first error a background write hit."""
    _flush_pending()


# -- search -----------------------------------------------------------------------------------


@overload
def search_runs(
    experiment_ids: Sequence[str] | str | None = ...,
    filter_string: str | None = ...,
    run_view_type: ViewType | str = ...,
    max_results: int = ...,
    order_by: Sequence[str] | None = ...,
    output_format: Literal["list"] = ...,
    experiment_names: Sequence[str] | None = ...,
    page_token: str | None = ...,
) -> list[Run]: ...


@overload
def search_runs(
    experiment_ids: Sequence[str] | str | None = ...,
    filter_string: str | None = ...,
    run_view_type: ViewType | str = ...,
    max_results: int = ...,
    order_by: Sequence[str] | None = ...,
    *,
    output_format: Literal["pandas"],
    experiment_names: Sequence[str] | None = ...,
    page_token: str | None = ...,
) -> pd.DataFrame: ...


def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str | None = None,
    run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    output_format: Literal["list", "pandas"] = "list",
    experiment_names: Sequence[str] | None = None,
    page_token: str | None = None,
) -> list[Run] | pd.DataFrame:
    """Runs matching a filter such as ``metrics.mae < 0.3 and params.alpha = '0.5'``.

    Args:
        experiment_ids: where to search; defaults to the active experiment.
        filter_string: the search language (see the README); compiled to SQL.
        run_view_type: ACTIVE_ONLY, DELETED_ONLY or ALL.
        max_results: page size (at most 50,000).
        order_by: clauses such as ``["metrics.mae ASC", "attributes.start_time DESC"]``.
        output_format: ``"list"`` of Run, or ``"pandas"`` for a DataFrame.
        experiment_names: names instead of (or besides) ids.
        page_token: the ``token`` of the previous page (a PagedList attribute).
    """
    _flush_pending()
    client = _get_client()
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids or [])
    for name in experiment_names or []:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise NotFoundError(f"Experiment '{name}' does not exist")
        ids.append(experiment.experiment_id)
    if not ids:
        ids = [_default_experiment_id(client)]
    runs = client.search_runs(ids, filter_string, run_view_type, max_results, order_by, page_token)
    if output_format == "pandas":
        from cairn.tracking.client import runs_to_dataframe

        return runs_to_dataframe(runs)
    if output_format != "list":
        raise InvalidParameterError(
            f"output_format must be 'list' or 'pandas', got {output_format!r}"
        )
    return runs


# -- artifacts --------------------------------------------------------------------------------


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Copy a local file into the active run's artifacts (under ``artifact_path``)."""
    _get_client().log_artifact(_active_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Copy a local folder's contents into the active run's artifacts."""
    _get_client().log_artifacts(_active_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    _get_client().log_text(_active_run_id(), text, artifact_file)


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> None:
    """Save a dict as JSON or YAML, by the extension of ``artifact_file``."""
    _get_client().log_dict(_active_run_id(), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Save a matplotlib figure (png, svg, pdf, jpg by extension)."""
    _get_client().log_figure(_active_run_id(), figure, artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    return _get_client().get_artifact_uri(_active_run_id(), artifact_path)


def _run_id_or_active(run_id: str | None) -> str:
    if run_id is not None:
        return run_id
    active = active_run()
    if active is None:
        raise InvalidParameterError("No active run: pass run_id=")
    return active.info.run_id


def list_artifacts(path: str | None = None, run_id: str | None = None) -> list[FileInfo]:
    return _get_client().list_artifacts(_run_id_or_active(run_id), path)


def download_artifacts(
    artifact_path: str | None = None,
    run_id: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
) -> str:
    """Download a run's artifact file or folder; returns the local path."""
    return _get_client().download_artifacts(_run_id_or_active(run_id), artifact_path, dst_path)


# -- interpreter exit -------------------------------------------------------------------------


def _at_exit() -> None:
    # An uncaught exception leaves sys.last_value set before atexit handlers run.
    status = (
        RunStatus.FAILED if getattr(sys, "last_value", None) is not None else RunStatus.FINISHED
    )
    try:
        for stack in list(_all_stacks):
            while stack:
                active = stack[-1]
                try:
                    _flush_pending()
                finally:
                    stack.pop()
                    if not active._managed:
                        _get_client().set_terminated(active.info.run_id, status)
        _flush_pending()
    except Exception as exc:
        print(f"cairn: could not finish logging at exit: {exc}", file=sys.stderr)


atexit.register(_at_exit)

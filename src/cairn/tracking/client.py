"""TrackingClient: every tracking operation with explicit ids, validated, over one store."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from cairn.entities import (
    Experiment,
    ExperimentTag,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from cairn.errors import InvalidParameterError, InvalidStateError, NotFoundError
from cairn.tracking import _validation as v

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from cairn.entities import DatasetInput, FileInfo
    from cairn.tracking.artifacts import ArtifactRepository
    from cairn.tracking.stores.base import TrackingStore

__all__ = ["TrackingClient"]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _status(status: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(status.upper() if isinstance(status, str) else status)
    except ValueError:
        choices = ", ".join(s.value for s in RunStatus)
        raise InvalidParameterError(
            f"Unknown run status {status!r}; use one of {choices}"
        ) from None


def _view_type(view_type: ViewType | str) -> ViewType:
    try:
        return ViewType(view_type.upper() if isinstance(view_type, str) else view_type)
    except ValueError:
        choices = ", ".join(s.value for s in ViewType)
        raise InvalidParameterError(
            f"Unknown view type {view_type!r}; use one of {choices}"
        ) from None


class TrackingClient:
    """Experiments, runs and artifacts addressed by id; the fluent API is a thin layer on this.

    Args:
        tracking_uri: a folder, ``sqlite:///PATH`` or ``postgresql://...``; defaults to the
            process's tracking URI (``cairn.set_tracking_uri`` / ``$CAIRN_TRACKING_URI`` /
            ``.cairn``).
        store: an already open store to use instead (the server passes its own).
    """

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str] | None = None,
        *,
        store: TrackingStore | None = None,
    ) -> None:
        from cairn._config import get_tracking_uri
        from cairn.tracking.stores import get_store

        self.tracking_uri = os.fspath(tracking_uri) if tracking_uri else get_tracking_uri()
        self.store: TrackingStore = store if store is not None else get_store(self.tracking_uri)
        self._artifact_uris: dict[str, str] = {}

    # -- experiments --------------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        v.check_experiment_name(name)
        experiment_tags = [
            ExperimentTag(v.check_key(k, "tag"), v.tag_value(k, value))
            for k, value in (tags or {}).items()
        ]
        return self.store.create_experiment(name, artifact_location, experiment_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> PagedList[Experiment]:
        return self.store.search_experiments(
            _view_type(view_type), max_results, page_token, name_like
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(str(experiment_id), v.check_experiment_name(new_name))

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        tag = ExperimentTag(v.check_key(key, "tag"), v.tag_value(key, value))
        self.store.set_experiment_tag(str(experiment_id), tag)

    def resolve_experiment_id(self, name_or_id: str) -> str:
        """An experiment id from a name or an id, as users type them on the command line."""
        experiment = self.get_experiment_by_name(name_or_id)
        if experiment is not None:
            return experiment.experiment_id
        if name_or_id.isdigit():
            return self.get_experiment(name_or_id).experiment_id
        raise NotFoundError(f"Experiment '{name_or_id}' does not exist")

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        user_id: str | None = None,
        *,
        request_id: str | None = None,
    ) -> Run:
        """Create a run; a repeated ``request_id`` returns the run its first call made."""
        from cairn.tracking._environment import current_user
        from cairn.tracking._names import random_run_name

        run_tags = [
            RunTag(v.check_key(k, "tag"), v.tag_value(k, val)) for k, val in (tags or {}).items()
        ]
        name = run_name or (tags or {}).get("mlflow.runName") or random_run_name()
        user = user_id or current_user()
        return self.store.create_run(
            str(experiment_id),
            v.check_text(user, "user id"),
            start_time if start_time is not None else _now_ms(),
            run_tags,
            v.check_text(str(name), "run name"),
            request_id=request_id,
        )

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def update_run(
        self, run_id: str, status: RunStatus | str | None = None, name: str | None = None
    ) -> RunInfo:
        resolved = _status(status) if status is not None else None
        end_time = _now_ms() if resolved is not None and resolved.is_terminated else None
        if name is not None:
            v.check_text(name, "run name")
        return self.store.update_run_info(run_id, resolved, end_time, name)

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> RunInfo:
        resolved = _status(status)
        if not resolved.is_terminated:
            raise InvalidParameterError(f"{resolved.value} is not a terminal status")
        return self.store.update_run_info(run_id, resolved, end_time or _now_ms())

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = None,
        run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        return self.store.search_runs(
            [str(i) for i in ids],
            filter_string,
            _view_type(run_view_type),
            max_results,
            list(order_by) if order_by else None,
            page_token,
        )

    # -- logging ------------------------------------------------------------------------------

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
    ) -> None:
        self.store.log_batch(run_id, metrics=[make_metric(key, value, timestamp, step)])

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.store.log_batch(run_id, params=[make_param(key, value)])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.store.log_batch(run_id, tags=[make_tag(key, value)])

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log many values in one transaction; larger inputs are split into REST-sized batches."""
        metrics = [make_metric(m.key, m.value, m.timestamp, m.step) for m in metrics]
        params = [make_param(p.key, p.value) for p in params]
        tags = [make_tag(tag.key, tag.value) for tag in tags]
        self.store.log_batch(run_id, metrics, params, tags)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record datasets (e.g. Delta table versions) the run read or wrote, with their tags."""
        for item in datasets:
            for key, value in item.tags.items():
                make_tag(key, value)
        self.store.log_inputs(run_id, datasets)

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList[Metric]:
        return self.store.get_metric_history(run_id, key, max_results, page_token)

    # -- artifacts ----------------------------------------------------------------------------

    def _repository(self, run_id: str, for_write: bool = False) -> ArtifactRepository:
        from cairn.tracking.artifacts import get_artifact_repository

        uri = self._artifact_uris.get(run_id)
        if uri is None or for_write:
            info = self.get_run(run_id).info
            if for_write and info.lifecycle_stage is LifecycleStage.DELETED:
                raise InvalidStateError(
                    f"Run '{run_id}' is deleted; restore it (`cairn runs restore {run_id}`) "
                    "to log artifacts"
                )
            uri = self._artifact_uris[run_id] = info.artifact_uri
        # `mlflow-artifacts:/` resolves against this client's server, not the process's.
        return get_artifact_repository(uri, self.tracking_uri)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        if not os.path.isfile(local_path):
            raise NotFoundError(f"No such file to log as an artifact: {os.fspath(local_path)}")
        self._repository(run_id, for_write=True).log_artifact(local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        if not os.path.isdir(local_dir):
            raise NotFoundError(f"No such folder to log as artifacts: {os.fspath(local_dir)}")
        self._repository(run_id, for_write=True).log_artifacts(local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._repository(run_id, for_write=True).write_text(artifact_file, text)

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        from cairn.tracking.artifacts import serialize_dict

        data = serialize_dict(dictionary, artifact_file)
        self._repository(run_id, for_write=True).write_bytes(artifact_file, data)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        from cairn.tracking.artifacts import figure_to_bytes

        data = figure_to_bytes(figure, artifact_file)
        self._repository(run_id, for_write=True).write_bytes(artifact_file, data)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self._repository(run_id).list_artifacts(path)

    def download_artifacts(
        self, run_id: str, path: str | None = None, dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        return self._repository(run_id).download_artifacts(path, dst_path)

    def get_artifact_uri(self, run_id: str, artifact_path: str | None = None) -> str:
        from cairn.tracking._paths import normalize_artifact_path

        root = self._repository(run_id).root_uri
        path = normalize_artifact_path(artifact_path)
        return f"{root.rstrip('/')}/{path}" if path else root


def make_metric(
    key: str, value: Any, timestamp: int | None = None, step: int | None = None
) -> Metric:
    """A validated Metric; timestamp defaults to now and step to 0."""
    v.check_key(key, "metric")
    return Metric(
        key,
        v.metric_value(key, value),
        _now_ms() if timestamp is None else v.check_timestamp(key, timestamp),
        0 if step is None else v.check_step(key, step),
    )


def make_param(key: str, value: Any) -> Param:
    return Param(v.check_key(key, "param"), v.param_value(key, value))


def make_tag(key: str, value: Any) -> RunTag:
    return RunTag(v.check_key(key, "tag"), v.tag_value(key, value))


def runs_to_dataframe(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: attributes, then ``metrics.*``, ``params.*`` and ``tags.*`` columns."""
    import pandas as pd

    records = []
    for run in runs:
        info = run.info
        record: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "status": info.status.value,
            "artifact_uri": info.artifact_uri,
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True)
            if info.end_time
            else pd.NaT,
        }
        record.update({f"metrics.{k}": val for k, val in run.data.metrics.items()})
        record.update({f"params.{k}": val for k, val in run.data.params.items()})
        record.update({f"tags.{k}": val for k, val in run.data.tags.items()})
        records.append(record)
    columns = [
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    return pd.DataFrame.from_records(records, columns=None if records else columns)

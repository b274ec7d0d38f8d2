"""The interface every tracking store implements (SQL today, REST with the server)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cairn.entities import (
        DatasetInput,
        Experiment,
        ExperimentTag,
        Metric,
        PagedList,
        Param,
        Run,
        RunInfo,
        RunStatus,
        RunTag,
        ViewType,
    )

__all__ = ["TrackingStore"]


class TrackingStore(Protocol):
    """Experiments and runs; inputs are validated by the caller, the store enforces state."""

    @property
    def default_artifact_root(self) -> str: ...

    def close(self) -> None: ...

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str: ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    def search_experiments(
        self,
        view_type: ViewType,
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> PagedList[Experiment]: ...

    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    def delete_experiment(self, experiment_id: str) -> None: ...

    def restore_experiment(self, experiment_id: str) -> None: ...

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None: ...

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag],
        run_name: str,
        request_id: str | None = None,
    ) -> Run:
        """Create a run; a repeated ``request_id`` returns the run its first call made."""
        ...

    def get_run(self, run_id: str) -> Run: ...

    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None,
        end_time: int | None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    def delete_run(self, run_id: str) -> None: ...

    def restore_run(self, run_id: str) -> None: ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        request_id: str | None = None,
    ) -> None:
        """Log values in one transaction; a repeated ``request_id`` is applied only once."""
        ...

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None: ...

    def delete_tag(self, run_id: str, key: str) -> None: ...

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]: ...

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        view_type: ViewType,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Run]: ...

"""Cairn's run-table endpoints for the web UI, under ``/api/2.0/cairn``.

``runs/table`` pages through exactly what ``runs/search`` finds, in the same order, but as
columns holding only the keys the table shows, with a plain ``offset`` so a virtualized table
can fetch any window (a page of wide runs through ``runs/search`` is megabytes).
``runs/count`` counts the matches apart from the pages, so a filter's first rows never wait
for it. ``runs/columns`` lists an experiment's keys and ``experiments/activity`` counts runs
per experiment.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Request as HttpRequest

from cairn.entities import ViewType
from cairn.server.routes._common import JSONRoute, Request
from cairn.tracking._wire import float_to_json
from cairn.tracking.stores.sql._paging import decode_token, encode_token
from cairn.tracking.stores.sql.views import ViewQueries

__all__ = ["Views", "router"]

CAIRN_API = "/api/2.0/cairn"
DEFAULT_PAGE = 100


def _views(request: HttpRequest) -> ViewQueries:
    views: ViewQueries | None = getattr(request.app.state, "views", None)
    if views is None:
        views = request.app.state.views = ViewQueries(request.app.state.store.engine)
    return views


Views = Annotated[ViewQueries, Depends(_views)]
router = APIRouter(prefix=CAIRN_API, tags=["cairn web UI"], route_class=JSONRoute)


class RunQuery(Request):
    experiment_ids: list[str]
    filter: str | None = None
    run_view_type: ViewType = ViewType.ACTIVE_ONLY


class RunTableRequest(RunQuery):
    order_by: list[str] = []
    max_results: int = DEFAULT_PAGE
    offset: int | None = None  # wins over page_token: a window anywhere in the result
    page_token: str | None = None
    params: list[str] | None = None  # None: every key the page's runs have
    metrics: list[str] | None = None
    tags: list[str] | None = None


def _metric_json(values: list[Any]) -> list[Any]:
    return [None if value is None else float_to_json(value) for value in values]


@router.post("/runs/table")
def run_table(body: RunTableRequest, views: Views) -> dict[str, Any]:
    offset = body.offset if body.offset is not None else decode_token(body.page_token)
    table = views.run_table(
        body.experiment_ids,
        body.filter,
        body.run_view_type,
        body.order_by,
        offset,
        body.max_results,
        {"params": body.params, "metrics": body.metrics, "tags": body.tags},
    )
    runs = [
        {
            "run_id": run["run_uuid"],
            "run_name": run["name"],
            "status": run["status"],
            "user_id": run["user_id"],
            "start_time": run["start_time"],
            "end_time": run["end_time"],
            "experiment_id": str(run["experiment_id"]),
            "lifecycle_stage": run["lifecycle_stage"],
        }
        for run in table.runs
    ]
    out: dict[str, Any] = {
        "offset": table.offset,
        "runs": runs,
        "params": table.columns["params"],
        "metrics": {k: _metric_json(v) for k, v in table.columns["metrics"].items()},
        "tags": table.columns["tags"],
    }
    if table.has_more:
        out["next_page_token"] = encode_token(table.offset + len(runs))
    return out


@router.post("/runs/count")
def run_count(body: RunQuery, views: Views) -> dict[str, Any]:
    return {"total": views.count_runs(body.experiment_ids, body.filter, body.run_view_type)}


@router.get("/runs/columns")
def run_columns(
    views: Views,
    experiment_ids: Annotated[list[str], Query()],
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    sample: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> dict[str, Any]:
    """Keys of the experiments' runs; ``sample=N`` reads only the latest N runs (fast)."""
    keys = views.column_keys(experiment_ids, run_view_type, sample)
    return {
        "params": keys.params,
        "metrics": keys.metrics,
        "tags": keys.tags,
        "complete": keys.complete,
    }


@router.get("/experiments/activity")
def experiment_activity(views: Views, view_type: ViewType = ViewType.ACTIVE_ONLY) -> dict[str, Any]:
    """Per experiment with runs: how many, and when the latest started or ended."""
    return {
        "experiments": [
            {"experiment_id": key, "run_count": a.run_count, "last_activity": a.last_activity}
            for key, a in views.experiment_activity(view_type).items()
        ]
    }

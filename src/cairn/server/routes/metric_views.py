"""Cairn's metric endpoints for charts, under ``/api/2.0/cairn/metrics``.

``get-history-downsampled`` answers a history of any length with at most ``max_points`` points,
bucketed in SQL with each bucket's mean, min and max, so a 100,000-step curve is a few kB and
its spikes still show. ``summary`` gives every metric of a run with its latest value and the
min and max of its history.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cairn.server.routes._common import JSONRoute
from cairn.server.routes.run_views import CAIRN_API, Views
from cairn.tracking._wire import float_to_json

__all__ = ["router"]

DEFAULT_POINTS = 1_000

router = APIRouter(prefix=f"{CAIRN_API}/metrics", tags=["cairn web UI"], route_class=JSONRoute)


@router.get("/get-history-downsampled")
def get_history_downsampled(
    views: Views,
    run_id: Annotated[str, Query(min_length=1)],
    metric_key: Annotated[str, Query(min_length=1)],
    max_points: int = DEFAULT_POINTS,
    start_step: int | None = None,
    end_step: int | None = None,
) -> dict[str, Any]:
    series = views.downsampled_history(run_id, metric_key, max_points, start_step, end_step)
    out: dict[str, Any] = {
        "metric_key": series.key,
        "total": series.total,
        "downsampled": series.downsampled,
        "steps": series.steps,
        "timestamps": series.timestamps,
        "values": series.values,
    }
    if series.downsampled:
        out["mins"] = series.mins
        out["maxs"] = series.maxs
    return out


@router.get("/summary")
def metric_summary(views: Views, run_id: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
    return {
        "metrics": [
            {
                "key": s.key,
                "latest": float_to_json(s.latest),
                "step": s.latest_step,
                "min": None if s.min is None else float_to_json(s.min),
                "max": None if s.max is None else float_to_json(s.max),
                "count": s.count,
            }
            for s in views.metric_summaries(run_id)
        ]
    }

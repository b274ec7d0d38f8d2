"""The web UI's data pages, under ``/api/2.0/cairn``: recorded Delta tables and lineage.

``data/tables`` lists the tables runs recorded (each version with how many runs read and wrote
it); ``data/history`` is one table's commits with the runs that used each version;
``data/version`` describes a version from the Delta log; ``data/diff`` compares two versions
(schema, rows, column statistics, shifted columns, commits in between); ``lineage`` follows a
model version or run down to the table versions and commits it was trained on.

The server opens only tables that a run recorded as a ``delta_table`` dataset, found by exact
path in the tracking store; any other URI a client names (``/etc``, ``../..``, a real Delta
table no run used) is a 404 before anything is opened.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Request as HttpRequest

from cairn.errors import CairnError, InvalidParameterError, NotFoundError
from cairn.server.routes._common import JSONRoute
from cairn.tracking.stores.sql.dataset_views import DatasetViews

__all__ = ["router"]

CAIRN_API = "/api/2.0/cairn"
DEFAULT_COMMITS = 200
MAX_COMMITS = 10_000
DEFAULT_USES = 500
MAX_USES = 2_000


def _views(request: HttpRequest) -> DatasetViews:
    views: DatasetViews | None = getattr(request.app.state, "dataset_views", None)
    if views is None:
        views = request.app.state.dataset_views = DatasetViews(request.app.state.store.engine)
    return views


Views = Annotated[DatasetViews, Depends(_views)]
Uri = Annotated[str, Query(min_length=1, max_length=4096)]
Version = Annotated[int, Query(ge=0)]
router = APIRouter(prefix=CAIRN_API, tags=["cairn web UI"], route_class=JSONRoute)


def _not_recorded(uri: str) -> NotFoundError:
    return NotFoundError(
        f"No run recorded a Delta table at {uri!r}: the server only shows tables that runs read "
        "or wrote (cairn.data.read_table, write_table or log_input inside a run)"
    )


def _recorded(views: DatasetViews, uri: str) -> str:
    if not views.is_recorded(uri):
        raise _not_recorded(uri)
    return uri


@router.get("/data/tables")
def data_tables(views: Views) -> dict[str, Any]:
    """Every table a run recorded, most recently used first."""
    return {"tables": [table.to_dict() for table in views.tables()]}


@router.get("/data/history")
def data_history(
    views: Views,
    uri: Uri,
    limit: Annotated[int, Query(ge=1, le=MAX_COMMITS)] = DEFAULT_COMMITS,
    runs: Annotated[int, Query(ge=0, le=MAX_USES)] = DEFAULT_USES,
) -> dict[str, Any]:
    """The table's commits (``limit``, newest first), how many runs read and wrote each
    recorded version, and the latest ``runs`` of those runs.

    A recorded table that can no longer be read (moved, deleted) still answers what the runs
    recorded, with ``error`` saying why its history is missing.
    """
    from cairn.data.tables import history

    table = views.table(uri)
    if table is None:
        raise _not_recorded(uri)
    _, uses = views.uses(uri, runs)
    commits: list[dict[str, Any]] = []
    error = None
    try:
        commits = [commit.to_dict() for commit in history(uri, limit=limit)]
    except CairnError as exc:
        error = exc.message
    return {
        "uri": uri,
        "name": table.name,
        "commits": commits,
        "versions": table.to_dict()["versions"],
        "uses": [use.to_dict() for use in uses],
        "error": error,
    }


@router.get("/data/version")
def data_version(views: Views, uri: Uri, version: Version) -> dict[str, Any]:
    """One version from the Delta log: rows, files, size, schema, content digest, time."""
    from cairn.data.tables import table_info

    return table_info(_recorded(views, uri), version).to_dict()


@router.get("/data/diff")
def data_diff(
    views: Views,
    uri: Uri,
    from_version: Annotated[int, Query(alias="from", ge=0)],
    to_version: Annotated[int, Query(alias="to", ge=0)],
) -> dict[str, Any]:
    """Schema changes, row counts, column statistics and commits between two versions."""
    from cairn.data.diff import diff

    return diff(_recorded(views, uri), from_version, to_version).to_dict()


@router.get("/lineage")
def lineage(
    request: HttpRequest,
    model: Annotated[str | None, Query(max_length=1000)] = None,
    version: Annotated[str | None, Query(max_length=64)] = None,
    alias: Annotated[str | None, Query(max_length=256)] = None,
    run_id: Annotated[str | None, Query(max_length=64)] = None,
    commits: Annotated[int, Query(ge=0, le=100)] = 5,
) -> dict[str, Any]:
    """Model version (``model`` with ``version`` or ``alias``) or run (``run_id``) → run →
    code, params, environment → table versions → their commits (``cairn lineage --json``).

    With ``--auth``, a model version's lineage needs READ on the model and on its run."""
    from cairn.data.trace import trace

    if model and run_id:
        raise InvalidParameterError("Give a model (with version or alias) or a run_id, not both")
    if model:
        if bool(version) == bool(alias):
            raise InvalidParameterError("Give the model's version or its alias (one of them)")
        if any(c in model for c in "/@"):
            raise InvalidParameterError(f"Lineage cannot look up model {model!r}: '/' or '@'")
        target = f"models:/{model}@{alias}" if alias else f"models:/{model}/{version}"
    elif run_id:
        target = run_id
    else:
        raise InvalidParameterError(
            "Missing value for required parameter 'model' (with 'version' or 'alias') or 'run_id'"
        )
    settings = request.app.state.settings
    found = trace(target, commits=commits, tracking_uri=settings.backend_store_uri)
    if model and found.run is not None:
        _require_run_read(request, found.run.info.run_id)
    return found.to_dict()


def _require_run_read(request: HttpRequest, run_id: str) -> None:
    """With ``--auth``: the model's rule checked READ on the model; its run's params, tags and
    tables need READ on the run's experiment too."""
    auth = getattr(request.app.state, "auth", None)
    if auth is None:
        return
    from cairn.errors import PermissionDeniedError
    from cairn.server.auth.entities import Permission
    from cairn.server.auth.middleware import current_user

    user = current_user(request.scope)
    if auth.permission(user, "run", run_id) < Permission.READ:
        raise PermissionDeniedError(
            f"User {user.username!r} needs READ permission on the experiment of run {run_id} "
            "to see this model version's lineage"
        )

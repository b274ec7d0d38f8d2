"""The access rule of every route: who may call it, on what, with which permission.

``RULES`` maps each route of the app, as ``(method, path template)`` exactly as the route is
declared, to a ``Rule``. The auth middleware looks every request up here; a request no rule
matches is refused, so a route added without a rule cannot be reached (and a test fails).

Each ``Check`` names a kind of resource, how to find its id in the request, and the permission
needed on it. The id is read from the same place the route reads it (query for GET, JSON body
otherwise, or the path), with the same precedence, so the check and the route agree on what is
being accessed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cairn.server.auth.entities import Permission

__all__ = [
    "RULES",
    "Access",
    "Check",
    "Filter",
    "Grant",
    "MissingParameter",
    "RequestData",
    "Rule",
]

R, E, M = Permission.READ, Permission.EDIT, Permission.MANAGE


class MissingParameter(Exception):
    """The request lacks the parameter naming the resource (the route would refuse it too)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class RequestData:
    """What locators read: path parameters, query parameters (multi-valued), the JSON body."""

    path_params: Mapping[str, str]
    query: Any  # starlette QueryParams: ``get`` gives the last value, as FastAPI reads scalars
    body: Any = None


Locator = Callable[[RequestData], list[str]]


class Access(enum.Enum):
    PUBLIC = "public"  # anyone, no credentials needed
    AUTHENTICATED = "authenticated"  # any signed-in user
    ADMIN = "admin"  # admins only
    CHECKED = "checked"  # signed in, and every check passes (admins pass every check)


@dataclass(frozen=True, slots=True)
class Check:
    """``kind``: experiment, experiment_name, run, logged_model, artifact (a proxy path), model
    (a registered model name), user (the caller themself) or token (one of the caller's)."""

    kind: str
    locate: Locator
    permission: Permission = Permission.READ


@dataclass(frozen=True, slots=True)
class Filter:
    """Drop the items of list ``key`` in the JSON answer the caller may not READ."""

    key: str
    kind: str  # experiment or model
    id_field: str


@dataclass(frozen=True, slots=True)
class Grant:
    """Give the caller MANAGE on what a successful request created."""

    kind: str  # experiment (id from the answer) or model (name from the request)
    field: str


@dataclass(frozen=True, slots=True)
class Rule:
    access: Access
    checks: tuple[Check, ...] = ()
    filter: Filter | None = None
    grant: Grant | None = None
    reads_body: bool = field(default=False)


# -- locators: the same parameter the route reads, with the same precedence -------------------


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise MissingParameter(name)
    return value


def query(name: str) -> Locator:
    return lambda req: [_str(req.query.get(name), name)]


def query_any(*names: str) -> Locator:
    """The first non-empty of several query parameters (``run_id or run_uuid``)."""

    def locate(req: RequestData) -> list[str]:
        for name in names:
            if req.query.get(name):
                return [str(req.query.get(name))]
        raise MissingParameter(names[0])

    return locate


def query_list(name: str) -> Locator:
    def locate(req: RequestData) -> list[str]:
        values = req.query.getlist(name)
        if not values:
            raise MissingParameter(name)
        return [_str(value, name) for value in values]

    return locate


def body(name: str) -> Locator:
    def locate(req: RequestData) -> list[str]:
        if not isinstance(req.body, dict):
            raise MissingParameter(name)
        return [_str(req.body.get(name), name)]

    return locate


def body_optional(name: str) -> Locator:
    def locate(req: RequestData) -> list[str]:
        value = req.body.get(name) if isinstance(req.body, dict) else None
        if value is None or value == "":
            return []
        return [_str(value, name)]

    return locate


def query_optional(name: str) -> Locator:
    """A query parameter, or [] when absent (the route needs another parameter then)."""

    def locate(req: RequestData) -> list[str]:
        value = req.query.get(name)
        return [value] if value else []

    return locate


def body_run(req: RequestData) -> list[str]:
    """``run_id``, else ``run_uuid``: the first key present, as the route's alias choice."""
    if not isinstance(req.body, dict):
        raise MissingParameter("run_id")
    key = "run_id" if "run_id" in req.body else "run_uuid"
    return [_str(req.body.get(key), "run_id")]


def body_list(name: str) -> Locator:
    def locate(req: RequestData) -> list[str]:
        values = req.body.get(name) if isinstance(req.body, dict) else None
        if not isinstance(values, list) or not values:
            raise MissingParameter(name)
        return [_str(value, name) for value in values]

    return locate


def body_items(name: str, field: str) -> Locator:
    """``field`` of each object in list ``name`` (optional: [] when absent)."""

    def locate(req: RequestData) -> list[str]:
        items = req.body.get(name) if isinstance(req.body, dict) else None
        if not isinstance(items, list):
            return []
        return [
            _str(item.get(field), f"{name}.{field}")
            for item in items
            if isinstance(item, dict) and item.get(field) is not None
        ]

    return locate


def path(name: str) -> Locator:
    return lambda req: [_str(req.path_params.get(name), name)]


def caller_or_body(name: str) -> Locator:
    """A username in the body, or [] (the route then acts on the caller)."""
    return body_optional(name)


def caller_or_query(name: str) -> Locator:
    def locate(req: RequestData) -> list[str]:
        value = req.query.get(name)
        return [value] if value else []

    return locate


# -- the table --------------------------------------------------------------------------------

API = "/api/2.0/mlflow"
CAIRN = "/api/2.0/cairn"
PROXY = "/api/2.0/mlflow-artifacts"
PUBLIC = Rule(Access.PUBLIC)
SIGNED_IN = Rule(Access.AUTHENTICATED)
ADMIN = Rule(Access.ADMIN)


def _checked(*checks: Check, grant: Grant | None = None) -> Rule:
    return Rule(Access.CHECKED, checks, grant=grant)


def experiment(locate: Locator, permission: Permission) -> Rule:
    return _checked(Check("experiment", locate, permission))


def run(locate: Locator, permission: Permission) -> Rule:
    return _checked(Check("run", locate, permission))


def model(locate: Locator, permission: Permission) -> Rule:
    return _checked(Check("model", locate, permission))


def logged_model(permission: Permission) -> Rule:
    return _checked(Check("logged_model", path("model_id"), permission))


def artifact(locate: Locator, permission: Permission) -> Rule:
    return _checked(Check("artifact", locate, permission))


def listing(key: str, kind: str, id_field: str) -> Rule:
    return Rule(Access.AUTHENTICATED, filter=Filter(key, kind, id_field))


_EXP_Q, _EXP_B = query("experiment_id"), body("experiment_id")
_RUN_Q = query_any("run_id", "run_uuid")
_NAME_Q, _NAME_B = query("name"), body("name")
_ARTIFACT = path("artifact_path")
_UI_PAGE = {"GET": SIGNED_IN, "HEAD": SIGNED_IN}

_TABLE: dict[str, dict[str, Rule]] = {
    # Docs, health and the UI's static bundle hold no tracking data.
    "/openapi.json": {"GET": PUBLIC, "HEAD": PUBLIC},
    "/docs": {"GET": PUBLIC, "HEAD": PUBLIC},
    "/docs/oauth2-redirect": {"GET": PUBLIC, "HEAD": PUBLIC},
    "/redoc": {"GET": PUBLIC, "HEAD": PUBLIC},
    "/health": {"GET": PUBLIC},
    "/ping": {"GET": PUBLIC},
    "/version": {"GET": PUBLIC},
    "/assets/{name}": {"GET": PUBLIC, "HEAD": PUBLIC},
    # The UI's pages: signing in here lets the browser send the same credentials to the API.
    "/": _UI_PAGE,
    "/experiments": _UI_PAGE,
    "/experiments/{rest:path}": _UI_PAGE,
    "/runs/{rest:path}": _UI_PAGE,
    "/compare": _UI_PAGE,
    "/models": _UI_PAGE,
    "/models/{rest:path}": _UI_PAGE,
    "/data": _UI_PAGE,
    "/lineage": _UI_PAGE,
    # Experiments
    f"{API}/experiments/create": {
        "POST": Rule(Access.AUTHENTICATED, grant=Grant("experiment", "experiment_id"))
    },
    f"{API}/experiments/get": {"GET": experiment(_EXP_Q, R)},
    f"{API}/experiments/get-by-name": {
        "GET": _checked(Check("experiment_name", query("experiment_name"), R))
    },
    f"{API}/experiments/search": {
        "POST": listing("experiments", "experiment", "experiment_id"),
        "GET": listing("experiments", "experiment", "experiment_id"),
    },
    f"{API}/experiments/update": {"POST": experiment(_EXP_B, E)},
    f"{API}/experiments/delete": {"POST": experiment(_EXP_B, M)},
    f"{API}/experiments/restore": {"POST": experiment(_EXP_B, M)},
    f"{API}/experiments/set-experiment-tag": {"POST": experiment(_EXP_B, E)},
    # Runs
    f"{API}/runs/create": {"POST": experiment(_EXP_B, E)},
    f"{API}/runs/get": {"GET": run(_RUN_Q, R)},
    f"{API}/runs/update": {"POST": run(body_run, E)},
    f"{API}/runs/delete": {"POST": run(body_run, M)},
    f"{API}/runs/restore": {"POST": run(body_run, M)},
    f"{API}/runs/search": {"POST": experiment(body_list("experiment_ids"), R)},
    f"{API}/runs/log-metric": {"POST": run(body_run, E)},
    f"{API}/runs/log-parameter": {"POST": run(body_run, E)},
    f"{API}/runs/set-tag": {"POST": run(body_run, E)},
    f"{API}/runs/delete-tag": {"POST": run(body_run, E)},
    f"{API}/runs/log-batch": {"POST": run(body_run, E)},
    # Linking logged models to a run: read those named as inputs, write those made outputs.
    f"{API}/runs/log-inputs": {
        "POST": _checked(
            Check("run", body_run, E), Check("logged_model", body_items("models", "model_id"), R)
        )
    },
    f"{API}/runs/outputs": {
        "POST": _checked(
            Check("run", body_run, E), Check("logged_model", body_items("models", "model_id"), E)
        )
    },
    f"{API}/runs/log-model": {"POST": run(body_run, E)},
    f"{API}/metrics/get-history": {"GET": run(_RUN_Q, R)},
    f"{CAIRN}/runs/create": {"POST": experiment(_EXP_B, E)},
    f"{CAIRN}/runs/log-batch": {"POST": run(body_run, E)},
    # Logged models (belong to an experiment)
    f"{API}/logged-models": {"POST": experiment(_EXP_B, E)},
    f"{API}/logged-models/search": {"POST": experiment(body_list("experiment_ids"), R)},
    f"{API}/logged-models/{{model_id}}": {
        "GET": logged_model(R),
        "PATCH": logged_model(E),
        "DELETE": logged_model(M),
    },
    f"{API}/logged-models/{{model_id}}/params": {"POST": logged_model(E)},
    f"{API}/logged-models/{{model_id}}/tags": {"PATCH": logged_model(E)},
    f"{API}/logged-models/{{model_id}}/tags/{{tag_key:path}}": {"DELETE": logged_model(E)},
    f"{API}/logged-models/{{model_id}}/artifacts/directories": {"GET": logged_model(R)},
    # Model registry
    f"{API}/registered-models/create": {
        "POST": Rule(Access.AUTHENTICATED, grant=Grant("model", "name"))
    },
    f"{API}/registered-models/get": {"GET": model(_NAME_Q, R)},
    f"{API}/registered-models/rename": {"POST": model(_NAME_B, E)},
    f"{API}/registered-models/update": {"PATCH": model(_NAME_B, E)},
    f"{API}/registered-models/delete": {"DELETE": model(_NAME_B, M)},
    f"{API}/registered-models/search": {"GET": listing("registered_models", "model", "name")},
    f"{API}/registered-models/get-latest-versions": {
        "POST": model(_NAME_B, R),
        "GET": model(_NAME_Q, R),
    },
    f"{API}/registered-models/set-tag": {"POST": model(_NAME_B, E)},
    f"{API}/registered-models/delete-tag": {"DELETE": model(_NAME_B, E)},
    f"{API}/registered-models/alias": {
        "POST": model(_NAME_B, E),
        "DELETE": model(_NAME_B, E),
        "GET": model(_NAME_Q, R),
    },
    f"{API}/model-versions/create": {
        "POST": _checked(
            Check("model", _NAME_B, E),
            Check("run", body_optional("run_id"), R),
            Check("logged_model", body_optional("model_id"), R),
        )
    },
    f"{API}/model-versions/get": {"GET": model(_NAME_Q, R)},
    f"{API}/model-versions/update": {"PATCH": model(_NAME_B, E)},
    f"{API}/model-versions/transition-stage": {"POST": model(_NAME_B, E)},
    f"{API}/model-versions/delete": {"DELETE": model(_NAME_B, M)},
    f"{API}/model-versions/search": {"GET": listing("model_versions", "model", "name")},
    f"{API}/model-versions/get-download-uri": {"GET": model(_NAME_Q, R)},
    f"{API}/model-versions/set-tag": {"POST": model(_NAME_B, E)},
    f"{API}/model-versions/delete-tag": {"DELETE": model(_NAME_B, E)},
    # Artifacts: a run's listing, and the proxy (paths start with the experiment id)
    f"{API}/artifacts/list": {"GET": run(_RUN_Q, R)},
    f"{PROXY}/artifacts": {"GET": artifact(lambda req: [req.query.get("path") or ""], R)},
    f"{PROXY}/artifacts/{{artifact_path:path}}": {
        "PUT": artifact(_ARTIFACT, E),
        "GET": artifact(_ARTIFACT, R),
        "DELETE": artifact(_ARTIFACT, M),
    },
    f"{PROXY}/mpu/create/{{artifact_path:path}}": {"POST": artifact(_ARTIFACT, E)},
    f"{PROXY}/mpu/complete/{{artifact_path:path}}": {"POST": artifact(_ARTIFACT, E)},
    f"{PROXY}/mpu/abort/{{artifact_path:path}}": {"POST": artifact(_ARTIFACT, E)},
    # The web UI's data calls
    f"{CAIRN}/runs/table": {"POST": experiment(body_list("experiment_ids"), R)},
    f"{CAIRN}/runs/count": {"POST": experiment(body_list("experiment_ids"), R)},
    f"{CAIRN}/runs/columns": {"GET": experiment(query_list("experiment_ids"), R)},
    f"{CAIRN}/experiments/activity": {"GET": listing("experiments", "experiment", "experiment_id")},
    f"{CAIRN}/metrics/get-history-downsampled": {"GET": run(query("run_id"), R)},
    f"{CAIRN}/metrics/summary": {"GET": run(query("run_id"), R)},
    f"{CAIRN}/artifacts/preview": {"GET": run(query("run_id"), R)},
    f"{CAIRN}/artifacts/get": {"GET": run(query("run_id"), R)},
    # Recorded Delta tables span experiments (and the server reads them from storage): admins.
    f"{CAIRN}/data/tables": {"GET": ADMIN},
    f"{CAIRN}/data/history": {"GET": ADMIN},
    f"{CAIRN}/data/version": {"GET": ADMIN},
    f"{CAIRN}/data/diff": {"GET": ADMIN},
    # A model version's lineage needs READ on the model, a run's on the run (its experiment).
    f"{CAIRN}/lineage": {
        "GET": _checked(
            Check("model", query_optional("model"), R), Check("run", query_optional("run_id"), R)
        )
    },
    # Users, tokens and permissions (routes of ``cairn.server.auth.routes``)
    f"{API}/users/create": {"POST": ADMIN},
    f"{API}/users/get": {"GET": _checked(Check("user", query("username")))},
    f"{API}/users/update-password": {"PATCH": _checked(Check("user", body("username")))},
    f"{API}/users/update-admin": {"PATCH": ADMIN},
    f"{API}/users/delete": {"DELETE": ADMIN},
    f"{CAIRN}/users/list": {"GET": ADMIN},
    f"{CAIRN}/users/current": {"GET": SIGNED_IN},
    f"{CAIRN}/tokens/create": {"POST": _checked(Check("user", caller_or_body("username")))},
    f"{CAIRN}/tokens/list": {"GET": _checked(Check("user", caller_or_query("username")))},
    f"{CAIRN}/tokens/revoke": {"POST": _checked(Check("token", body("token_id")))},
    **{
        f"{API}/experiments/permissions/{verb}": {method: experiment(locate, M)}
        for verb, method, locate in (
            ("create", "POST", _EXP_B),
            ("get", "GET", _EXP_Q),
            ("update", "PATCH", _EXP_B),
            ("delete", "DELETE", _EXP_B),
        )
    },
    **{
        f"{API}/registered-models/permissions/{verb}": {method: model(locate, M)}
        for verb, method, locate in (
            ("create", "POST", _NAME_B),
            ("get", "GET", _NAME_Q),
            ("update", "PATCH", _NAME_B),
            ("delete", "DELETE", _NAME_B),
        )
    },
}


def _reads_body(method: str, rule: Rule) -> bool:
    """Whether the middleware reads the JSON body: for any check but an artifact path (never
    buffer an upload), or a grant naming what the request creates."""
    if method in ("GET", "HEAD"):
        return False
    return any(check.kind != "artifact" for check in rule.checks) or (
        rule.grant is not None and rule.grant.kind == "model"
    )


RULES: dict[tuple[str, str], Rule] = {
    (method, template): Rule(
        rule.access, rule.checks, rule.filter, rule.grant, _reads_body(method, rule)
    )
    for template, methods in _TABLE.items()
    for method, rule in methods.items()
}

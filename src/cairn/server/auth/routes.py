"""Users, API tokens and permissions over REST (MLflow's paths where MLflow has them).

Mounted only with ``--auth``. Who may call each endpoint is decided by the middleware from
``rules.RULES`` (admins, the user themself, MANAGE on the experiment or model); these handlers
only do the work, acting on the caller where no username is given.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Request as HttpRequest

from cairn.server.auth.entities import Permission, check_username
from cairn.server.auth.middleware import AuthState, current_user
from cairn.server.routes._common import API, JSONRoute, Request

__all__ = ["router"]

CAIRN_API = "/api/2.0/cairn"

router = APIRouter(tags=["authentication"], route_class=JSONRoute)


def _state(request: HttpRequest) -> AuthState:
    state: AuthState = request.app.state.auth
    return state


class NewUser(Request):
    username: str
    password: str


class Username(Request):
    username: str


class NewPassword(Request):
    username: str
    password: str


class AdminFlag(Request):
    username: str
    is_admin: bool


class ExperimentPermission(Request):
    experiment_id: str
    username: str
    permission: str = ""


class ModelPermission(Request):
    name: str
    username: str
    permission: str = ""


class NewToken(Request):
    name: str = ""
    username: str | None = None


class TokenRef(Request):
    token_id: str


@router.post(f"{API}/users/create")
def create_user(body: NewUser, request: HttpRequest) -> dict[str, Any]:
    user = _state(request).store.create_user(check_username(body.username), body.password)
    return {"user": user.to_json()}


@router.get(f"{API}/users/get")
def get_user(request: HttpRequest, username: Annotated[str, Query()]) -> dict[str, Any]:
    return {"user": _state(request).store.get_user(username).to_json()}


@router.patch(f"{API}/users/update-password")
def update_password(body: NewPassword, request: HttpRequest) -> dict[str, Any]:
    state = _state(request)
    state.store.update_password(body.username, body.password)
    state.changed()
    return {}


@router.patch(f"{API}/users/update-admin")
def update_admin(body: AdminFlag, request: HttpRequest) -> dict[str, Any]:
    state = _state(request)
    state.store.set_admin(body.username, body.is_admin)
    state.changed()
    return {}


@router.delete(f"{API}/users/delete")
def delete_user(body: Username, request: HttpRequest) -> dict[str, Any]:
    state = _state(request)
    state.store.delete_user(body.username)
    state.changed()
    return {}


@router.get(f"{CAIRN_API}/users/list")
def list_users(request: HttpRequest) -> dict[str, Any]:
    return {"users": [user.to_json() for user in _state(request).store.list_users()]}


@router.get(f"{CAIRN_API}/users/current")
def whoami(request: HttpRequest) -> dict[str, Any]:
    return {"user": current_user(request.scope).to_json()}


@router.post(f"{CAIRN_API}/tokens/create")
def create_token(body: NewToken, request: HttpRequest) -> dict[str, Any]:
    username = body.username or current_user(request.scope).username
    token, secret = _state(request).store.create_token(username, body.name)
    return {"token": secret, "info": token.to_json()}


@router.get(f"{CAIRN_API}/tokens/list")
def list_tokens(request: HttpRequest, username: str | None = None) -> dict[str, Any]:
    owner = username or current_user(request.scope).username
    return {"tokens": [token.to_json() for token in _state(request).store.list_tokens(owner)]}


@router.post(f"{CAIRN_API}/tokens/revoke")
def revoke_token(body: TokenRef, request: HttpRequest) -> dict[str, Any]:
    from cairn.errors import InvalidParameterError

    try:
        token_id = int(body.token_id)
    except ValueError:
        raise InvalidParameterError(f"Invalid token id {body.token_id!r}") from None
    state = _state(request)
    state.store.revoke_token(token_id)
    state.changed()
    return {}


def _experiment_permission_json(experiment_id: str, username: str, p: Permission) -> dict[str, Any]:
    return {
        "experiment_permission": {
            "experiment_id": experiment_id,
            "username": username,
            "permission": p.name,
        }
    }


@router.post(f"{API}/experiments/permissions/create")
def create_experiment_permission(body: ExperimentPermission, request: HttpRequest) -> Any:
    return _set_experiment_permission(body, request, create=True)


@router.patch(f"{API}/experiments/permissions/update")
def update_experiment_permission(body: ExperimentPermission, request: HttpRequest) -> Any:
    return _set_experiment_permission(body, request, create=False)


def _set_experiment_permission(
    body: ExperimentPermission, request: HttpRequest, *, create: bool
) -> dict[str, Any]:
    state = _state(request)
    permission = Permission.parse(body.permission)
    state.store.set_experiment_permission(
        body.experiment_id, body.username, permission, create=create
    )
    state.changed(credentials=False)
    return _experiment_permission_json(body.experiment_id, body.username, permission)


@router.get(f"{API}/experiments/permissions/get")
def get_experiment_permission(
    request: HttpRequest,
    experiment_id: Annotated[str, Query()],
    username: Annotated[str, Query()],
) -> dict[str, Any]:
    permission = _state(request).store.get_experiment_permission(experiment_id, username)
    return _experiment_permission_json(experiment_id, username, permission)


@router.delete(f"{API}/experiments/permissions/delete")
def delete_experiment_permission(body: ExperimentPermission, request: HttpRequest) -> Any:
    state = _state(request)
    state.store.delete_experiment_permission(body.experiment_id, body.username)
    state.changed(credentials=False)
    return {}


def _model_permission_json(name: str, username: str, p: Permission) -> dict[str, Any]:
    return {
        "registered_model_permission": {"name": name, "username": username, "permission": p.name}
    }


@router.post(f"{API}/registered-models/permissions/create")
def create_model_permission(body: ModelPermission, request: HttpRequest) -> Any:
    return _set_model_permission(body, request, create=True)


@router.patch(f"{API}/registered-models/permissions/update")
def update_model_permission(body: ModelPermission, request: HttpRequest) -> Any:
    return _set_model_permission(body, request, create=False)


def _set_model_permission(
    body: ModelPermission, request: HttpRequest, *, create: bool
) -> dict[str, Any]:
    state = _state(request)
    permission = Permission.parse(body.permission)
    state.store.set_model_permission(body.name, body.username, permission, create=create)
    state.changed(credentials=False)
    return _model_permission_json(body.name, body.username, permission)


@router.get(f"{API}/registered-models/permissions/get")
def get_model_permission(
    request: HttpRequest, name: Annotated[str, Query()], username: Annotated[str, Query()]
) -> dict[str, Any]:
    permission = _state(request).store.get_model_permission(name, username)
    return _model_permission_json(name, username, permission)


@router.delete(f"{API}/registered-models/permissions/delete")
def delete_model_permission(body: ModelPermission, request: HttpRequest) -> Any:
    state = _state(request)
    state.store.delete_model_permission(body.name, body.username)
    state.changed(credentials=False)
    return {}

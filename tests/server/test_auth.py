"""``cairn server --auth``: sign-in (HTTP Basic, bearer tokens), admin-only user management,
permissions granted and changed over REST, login rate limiting, and real clients: the stock
``mlflow`` client and Cairn's own, against a server on 127.0.0.1.

Passwords here are hashed with argon2's real parameters (the matrix module uses cheap ones).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from cairn.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    NotFoundError,
    UnauthenticatedError,
)
from cairn.server import ServerSettings, create_app
from cairn.server.auth import ensure_admin
from cairn.server.auth.stores.sql import AuthStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi import FastAPI

API = "/api/2.0/mlflow"
CAIRN = "/api/2.0/cairn"
ADMIN_PASSWORD = "admin-password-1"
ALICE_PASSWORD = "alice-password-1"


def _basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = _basic("admin", ADMIN_PASSWORD)
ALICE = _basic("alice", ALICE_PASSWORD)


def _settings(tmp_path: Path, **overrides: Any) -> ServerSettings:
    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = AuthStore.open(uri)
    if store.count_admins() == 0:
        ensure_admin(store, "admin", ADMIN_PASSWORD)
        store.create_user("alice", ALICE_PASSWORD)
    store.close()
    options: dict[str, Any] = {
        "backend_store_uri": uri,
        "artifacts_destination": str(tmp_path / "artifacts"),
        "auth": True,
        **overrides,
    }
    return ServerSettings(**options)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path)), base_url="http://localhost") as test_client:
        yield test_client


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    message: str = body["message"]
    return message


# -- who is calling -----------------------------------------------------------------------------


def test_no_credentials_get_401_with_a_basic_challenge(client: TestClient) -> None:
    response = client.get(f"{API}/experiments/get", params={"experiment_id": "0"})
    assert "Authentication required" in _error(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith('Basic realm="Cairn"')
    assert client.get("/health").status_code == 200  # public


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (_basic("alice", "wrong-password"), "Invalid username, password or token"),
        (_basic("nobody", ALICE_PASSWORD), "Invalid username, password or token"),
        ({"Authorization": "Basic !!!"}, "Malformed HTTP Basic credentials"),
        ({"Authorization": "Basic " + base64.b64encode(b"alice").decode()}, "expected user:pass"),
        (_bearer("cairn_not-a-real-token"), "Invalid username, password or token"),
        ({"Authorization": "Digest x"}, "Unsupported Authorization header"),
    ],
)
def test_bad_credentials_get_401(client: TestClient, header: dict[str, str], message: str) -> None:
    response = client.get(f"{CAIRN}/users/current", headers=header)
    assert message in _error(response, 401, "UNAUTHENTICATED")


def test_basic_and_bearer_both_sign_in(client: TestClient) -> None:
    assert client.get(f"{CAIRN}/users/current", headers=ALICE).json()["user"]["username"] == (
        "alice"
    )
    created = client.post(f"{CAIRN}/tokens/create", json={"name": "laptop"}, headers=ALICE).json()
    assert created["token"].startswith("cairn_") and created["info"]["name"] == "laptop"
    me = client.get(f"{CAIRN}/users/current", headers=_bearer(created["token"])).json()
    assert me["user"] == {**me["user"], "username": "alice", "is_admin": False}


def test_a_revoked_token_gets_401(client: TestClient) -> None:
    created = client.post(f"{CAIRN}/tokens/create", json={}, headers=ALICE).json()
    token, token_id = created["token"], created["info"]["id"]
    assert client.get(f"{CAIRN}/users/current", headers=_bearer(token)).status_code == 200
    revoked = client.post(f"{CAIRN}/tokens/revoke", json={"token_id": str(token_id)}, headers=ALICE)
    assert revoked.status_code == 200
    response = client.get(f"{CAIRN}/users/current", headers=_bearer(token))
    assert "Invalid username, password or token" in _error(response, 401, "UNAUTHENTICATED")
    listed = client.get(f"{CAIRN}/tokens/list", headers=ALICE).json()["tokens"]
    assert [t["id"] for t in listed if "revoked_time" in t] == [token_id]
    assert all("token" not in t for t in listed)  # secrets are never listed


def test_others_cannot_revoke_or_list_your_tokens(client: TestClient) -> None:
    client.post(
        f"{API}/users/create", json={"username": "bob", "password": "bob-password-1"}, headers=ADMIN
    )
    created = client.post(f"{CAIRN}/tokens/create", json={}, headers=ALICE).json()
    bob = _basic("bob", "bob-password-1")
    response = client.post(
        f"{CAIRN}/tokens/revoke", json={"token_id": str(created["info"]["id"])}, headers=bob
    )
    assert "needs READ permission on token" in _error(response, 403, "PERMISSION_DENIED")
    response = client.get(f"{CAIRN}/tokens/list", params={"username": "alice"}, headers=bob)
    _error(response, 403, "PERMISSION_DENIED")
    response = client.post(f"{CAIRN}/tokens/create", json={"username": "alice"}, headers=bob)
    _error(response, 403, "PERMISSION_DENIED")


def test_password_change_applies_at_once(client: TestClient) -> None:
    assert client.get(f"{CAIRN}/users/current", headers=ALICE).status_code == 200
    changed = client.patch(
        f"{API}/users/update-password",
        json={"username": "alice", "password": "a-new-password-2"},
        headers=ALICE,
    )
    assert changed.status_code == 200
    _error(client.get(f"{CAIRN}/users/current", headers=ALICE), 401, "UNAUTHENTICATED")
    new = _basic("alice", "a-new-password-2")
    assert client.get(f"{CAIRN}/users/current", headers=new).status_code == 200


# -- users ----------------------------------------------------------------------------------------


def test_only_admins_create_users(client: TestClient) -> None:
    body = {"username": "carol", "password": "carol-password-1"}
    response = client.post(f"{API}/users/create", json=body)
    _error(response, 401, "UNAUTHENTICATED")
    response = client.post(f"{API}/users/create", json=body, headers=ALICE)
    assert "Only admins may do this" in _error(response, 403, "PERMISSION_DENIED")
    created = client.post(f"{API}/users/create", json=body, headers=ADMIN)
    assert created.json()["user"]["username"] == "carol"
    assert client.get(f"{CAIRN}/users/current", headers=_basic("carol", "carol-password-1")).json()
    response = client.post(f"{API}/users/create", json=body, headers=ADMIN)
    assert "already exists" in _error(response, 400, "RESOURCE_ALREADY_EXISTS")
    short = {"username": "dave", "password": "short"}
    response = client.post(f"{API}/users/create", json=short, headers=ADMIN)
    assert "at least 8 characters" in _error(response, 400, "INVALID_PARAMETER_VALUE")
    bad = {"username": "a:b", "password": "long-enough-1"}
    response = client.post(f"{API}/users/create", json=bad, headers=ADMIN)
    assert "Invalid username 'a:b'" in _error(response, 400, "INVALID_PARAMETER_VALUE")


def test_users_read_themselves_admins_everyone(client: TestClient) -> None:
    mine = client.get(f"{API}/users/get", params={"username": "alice"}, headers=ALICE)
    assert mine.json()["user"]["username"] == "alice"
    response = client.get(f"{API}/users/get", params={"username": "admin"}, headers=ALICE)
    assert "needs READ permission on user 'admin'" in _error(response, 403, "PERMISSION_DENIED")
    listed = client.get(f"{CAIRN}/users/list", headers=ADMIN).json()["users"]
    assert [u["username"] for u in listed] == ["admin", "alice"]
    _error(client.get(f"{CAIRN}/users/list", headers=ALICE), 403, "PERMISSION_DENIED")


def test_admin_rights_granted_and_the_last_admin_kept(client: TestClient) -> None:
    response = client.patch(
        f"{API}/users/update-admin", json={"username": "admin", "is_admin": False}, headers=ADMIN
    )
    assert "Cannot demote the last admin" in _error(response, 400, "INVALID_PARAMETER_VALUE")
    promoted = client.patch(
        f"{API}/users/update-admin", json={"username": "alice", "is_admin": True}, headers=ADMIN
    )
    assert promoted.status_code == 200
    assert client.get(f"{CAIRN}/users/list", headers=ALICE).status_code == 200
    deleted = client.request(
        "DELETE", f"{API}/users/delete", json={"username": "admin"}, headers=ALICE
    )
    assert deleted.status_code == 200
    _error(client.get(f"{CAIRN}/users/current", headers=ADMIN), 401, "UNAUTHENTICATED")


# -- permissions ----------------------------------------------------------------------------------


def test_creators_manage_and_grant_others(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth_default_permission="NO_PERMISSIONS")
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        client.post(
            f"{API}/users/create",
            json={"username": "bob", "password": "bob-password-1"},
            headers=ADMIN,
        )
        bob = _basic("bob", "bob-password-1")
        exp = client.post(f"{API}/experiments/create", json={"name": "alices"}, headers=ALICE)
        exp_id = exp.json()["experiment_id"]
        got = client.get(
            f"{API}/experiments/permissions/get",
            params={"experiment_id": exp_id, "username": "alice"},
            headers=ALICE,
        )
        assert got.json()["experiment_permission"]["permission"] == "MANAGE"
        response = client.get(
            f"{API}/experiments/get", params={"experiment_id": exp_id}, headers=bob
        )
        assert "needs READ permission on experiment" in _error(response, 403, "PERMISSION_DENIED")
        grant = {"experiment_id": exp_id, "username": "bob", "permission": "READ"}
        # bob cannot grant himself; alice (MANAGE) can
        _error(
            client.post(f"{API}/experiments/permissions/create", json=grant, headers=bob),
            403,
            "PERMISSION_DENIED",
        )
        created = client.post(f"{API}/experiments/permissions/create", json=grant, headers=ALICE)
        assert created.status_code == 200
        assert (
            client.get(
                f"{API}/experiments/get", params={"experiment_id": exp_id}, headers=bob
            ).status_code
            == 200
        )
        run = client.post(f"{API}/runs/create", json={"experiment_id": exp_id}, headers=bob)
        assert "needs EDIT permission" in _error(run, 403, "PERMISSION_DENIED")
        grant["permission"] = "EDIT"
        assert (
            client.patch(
                f"{API}/experiments/permissions/update", json=grant, headers=ALICE
            ).status_code
            == 200
        )
        run = client.post(f"{API}/runs/create", json={"experiment_id": exp_id}, headers=bob)
        assert run.status_code == 200
        grant["permission"] = "OWNER"
        response = client.patch(f"{API}/experiments/permissions/update", json=grant, headers=ALICE)
        assert "Invalid permission 'OWNER'" in _error(response, 400, "INVALID_PARAMETER_VALUE")
        model = client.post(f"{API}/registered-models/create", json={"name": "m"}, headers=bob)
        assert model.status_code == 200
        got = client.get(
            f"{API}/registered-models/permissions/get",
            params={"name": "m", "username": "bob"},
            headers=bob,
        )
        assert got.json()["registered_model_permission"]["permission"] == "MANAGE"
        _error(
            client.get(f"{API}/registered-models/get", params={"name": "m"}, headers=ALICE),
            403,
            "PERMISSION_DENIED",
        )
        deleted = client.request(
            "DELETE",
            f"{API}/experiments/permissions/delete",
            json={"experiment_id": exp_id, "username": "bob"},
            headers=ALICE,
        )
        assert deleted.status_code == 200
        _error(
            client.get(f"{API}/experiments/get", params={"experiment_id": exp_id}, headers=bob),
            403,
            "PERMISSION_DENIED",
        )


def test_default_permission_applies_to_what_was_never_granted(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth_default_permission="READ")
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        exp_id = client.post(f"{API}/experiments/create", json={"name": "x"}, headers=ADMIN).json()[
            "experiment_id"
        ]
        assert (
            client.get(
                f"{API}/experiments/get", params={"experiment_id": exp_id}, headers=ALICE
            ).status_code
            == 200
        )
        response = client.post(
            f"{API}/experiments/set-experiment-tag",
            json={"experiment_id": exp_id, "key": "k", "value": "v"},
            headers=ALICE,
        )
        _error(response, 403, "PERMISSION_DENIED")
        response = client.get(f"{API}/runs/get", params={"run_id": "no-such-run"}, headers=ALICE)
        _error(response, 404, "RESOURCE_DOES_NOT_EXIST")  # READ by default: the route answers
        response = client.post(f"{API}/runs/search", json={}, headers=ALICE)
        assert "experiment_ids" in _error(response, 400, "INVALID_PARAMETER_VALUE")


# -- rate limiting --------------------------------------------------------------------------------


def test_repeated_failures_get_429(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth_max_failures=3, auth_failure_window=120.0)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        wrong = _basic("alice", "not-her-password")
        for _ in range(3):
            _error(client.get(f"{CAIRN}/users/current", headers=wrong), 401, "UNAUTHENTICATED")
        blocked = client.get(f"{CAIRN}/users/current", headers=ALICE)  # even the right one
        assert "Too many failed sign-in attempts" in _error(blocked, 429, "REQUEST_LIMIT_EXCEEDED")
        assert int(blocked.headers["retry-after"]) >= 1
        token = _bearer("cairn_guess")
        _error(client.get(f"{CAIRN}/users/current", headers=token), 429, "REQUEST_LIMIT_EXCEEDED")
        assert client.get("/health").status_code == 200  # public routes never count


def test_login_limiter_counts_per_key() -> None:
    from cairn.server.auth.middleware import LoginLimiter

    limiter = LoginLimiter(max_failures=2, window_seconds=60)
    limiter.failed("ip:a", "user:x")
    assert limiter.retry_after("ip:a") is None
    limiter.failed("ip:b", "user:x")
    assert limiter.retry_after("ip:c", "user:y") is None
    wait = limiter.retry_after("ip:c", "user:x")
    assert wait is not None and 59 < wait <= 60
    short = LoginLimiter(max_failures=1, window_seconds=0.2)
    short.failed("ip:a")
    assert short.retry_after("ip:a") is not None
    time.sleep(0.25)
    assert short.retry_after("ip:a") is None  # the window passed


# -- the app and the store ------------------------------------------------------------------------


def test_auth_refuses_to_start_without_an_admin(tmp_path: Path) -> None:
    settings = ServerSettings(backend_store_uri=str(tmp_path / "store"), auth=True)
    with pytest.raises(InvalidParameterError, match="--auth needs an admin"):
        create_app(settings)


def test_ensure_admin_uses_the_environment_and_never_a_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AuthStore.open(f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.delenv("CAIRN_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("CAIRN_ADMIN_PASSWORD", raising=False)
    with pytest.raises(InvalidParameterError, match="set CAIRN_ADMIN_USERNAME"):
        ensure_admin(store, None, None)
    monkeypatch.setenv("CAIRN_ADMIN_USERNAME", "root")
    monkeypatch.setenv("CAIRN_ADMIN_PASSWORD", "root-password-1")
    assert ensure_admin(store, None, None) == "root"
    assert ensure_admin(store, None, None) is None  # already has one
    assert store.check_password("root", "root-password-1") is not None
    store.close()


def test_only_hashes_are_stored(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'a.db'}"
    store = AuthStore.open(uri)
    store.create_user("eve", "eve-password-1")
    _, secret = store.create_token("eve", "ci")
    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM users")).all())
        dump += repr(conn.execute(sa.text("SELECT * FROM api_tokens")).all())
    engine.dispose()
    assert "eve-password-1" not in dump and secret not in dump
    assert "$argon2id$" in dump
    assert store.user_for_token(secret) is not None
    with pytest.raises(NotFoundError, match="Token 99 does not exist"):
        store.revoke_token(99)
    store.close()


def test_auth_tables_come_with_migration_0005(tmp_path: Path) -> None:
    from cairn.tracking.stores.sql.engine import HEAD_REVISION, downgrade_schema

    uri = f"sqlite:///{tmp_path / 'a.db'}"
    store = AuthStore.open(uri)
    store.create_user("kept", "kept-password-1")
    tables = {"users", "api_tokens", "experiment_permissions", "model_permissions"}
    downgrade_schema(store._engine, "0004")
    with store._engine.connect() as conn:
        assert not tables & set(sa.inspect(conn).get_table_names())
    store.close()
    reopened = AuthStore.open(uri)
    with reopened._engine.connect() as conn:
        assert tables <= set(sa.inspect(conn).get_table_names())
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
            HEAD_REVISION
        )
    assert reopened.list_users() == []
    reopened.close()


def test_without_auth_nothing_changes(tmp_path: Path) -> None:
    settings = ServerSettings(backend_store_uri=str(tmp_path / "store"))
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        assert (
            client.get(f"{API}/experiments/get", params={"experiment_id": "0"}).status_code == 200
        )
        assert client.get(f"{CAIRN}/users/current").status_code == 404  # no auth routes


# -- real clients through a real socket -----------------------------------------------------------


def _serve(app: FastAPI) -> Iterator[str]:
    import uvicorn
    from tests.conftest import _free_port

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[str]:
    yield from _serve(create_app(_settings(tmp_path)))


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch, auth_server: str) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    for name in (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    return auth_server


@pytest.mark.slow
def test_stock_mlflow_client_with_username_and_password(
    mlflow_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(mlflow_env)
    with pytest.raises(MlflowException, match=r"401|UNAUTHENTICATED|Authentication required"):
        client.create_experiment("anonymous")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ALICE_PASSWORD)
    exp_id = client.create_experiment("alice-exp")
    run = client.create_run(exp_id)
    client.log_param(run.info.run_id, "lr", "0.1")
    for step in range(3):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello")
    client.log_artifact(run.info.run_id, str(artifact))
    fetched = client.get_run(run.info.run_id)
    assert fetched.data.params == {"lr": "0.1"}
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [
        1.0,
        0.5,
        1.0 / 3,
    ]
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["notes.txt"]
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    with pytest.raises(MlflowException, match=r"401|UNAUTHENTICATED|Invalid username"):
        client.get_run(run.info.run_id)


@pytest.mark.slow
def test_stock_mlflow_client_with_a_token(mlflow_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    import mlflow
    from mlflow.exceptions import MlflowException

    created = httpx.post(
        f"{mlflow_env}{CAIRN}/tokens/create", json={"name": "mlflow"}, headers=ALICE, timeout=30
    ).json()
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", created["token"])
    client = mlflow.MlflowClient(mlflow_env)
    exp_id = client.create_experiment("token-exp")
    run = client.create_run(exp_id)
    client.log_metric(run.info.run_id, "acc", 0.9)
    assert client.get_run(run.info.run_id).data.metrics == {"acc": 0.9}
    revoked = httpx.post(
        f"{mlflow_env}{CAIRN}/tokens/revoke",
        json={"token_id": str(created["info"]["id"])},
        headers=ALICE,
        timeout=30,
    )
    assert revoked.status_code == 200
    with pytest.raises(MlflowException, match=r"401|UNAUTHENTICATED|Invalid username"):
        client.get_run(run.info.run_id)


@pytest.mark.slow
def test_cairn_client_sends_credentials_from_the_environment(
    auth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.tracking.stores.rest import RestStore

    for name in ("CAIRN_TRACKING_TOKEN", "CAIRN_TRACKING_USERNAME", "CAIRN_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    anonymous = RestStore(auth_server, offline_logging=False)
    with pytest.raises(UnauthenticatedError, match="Authentication required"):
        anonymous.create_experiment("nope")
    anonymous.close()
    monkeypatch.setenv("CAIRN_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("CAIRN_TRACKING_PASSWORD", ALICE_PASSWORD)
    with_password = RestStore(auth_server, offline_logging=False)
    exp_id = with_password.create_experiment("cairn-client")
    with_password.close()
    import httpx

    token = httpx.post(
        f"{auth_server}{CAIRN}/tokens/create", json={}, headers=ALICE, timeout=30
    ).json()["token"]
    monkeypatch.delenv("CAIRN_TRACKING_USERNAME")
    monkeypatch.setenv("CAIRN_TRACKING_TOKEN", token)
    with_token = RestStore(auth_server, offline_logging=False)
    assert with_token.get_experiment(exp_id).name == "cairn-client"
    with_token.close()


@pytest.mark.slow
def test_cairn_server_auth_command(
    cairn_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cairn server --auth`` needs an admin: refused without, created from the environment."""
    import subprocess
    import sys

    store = str(tmp_path / "cli-store")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    refused = subprocess.run(
        [
            sys.executable,
            "-c",
            "import cairn.cli as c; c.main()",
            "server",
            "--auth",
            "--port",
            "0",
            "--backend-store-uri",
            store,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "--auth needs an admin and this store has none" in refused.stderr
    from cairn.cli.server import _first_admin
    from cairn.cli.users import open_auth_store

    monkeypatch.setenv("CAIRN_ADMIN_USERNAME", "root")
    monkeypatch.setenv("CAIRN_ADMIN_PASSWORD", "root-password-1")
    _first_admin(store)  # what `cairn server --auth` does first, from the environment
    users = open_auth_store(store)
    assert [(u.username, u.is_admin) for u in users.list_users()] == [("root", True)]
    users.close()
    server = cairn_server(store, "--auth", "--auth-default-permission", "NO_PERMISSIONS")
    assert "auth: on (default permission NO_PERMISSIONS)" in "".join(server.output)
    import httpx

    assert httpx.get(f"{server.url}{API}/experiments/search", timeout=30).status_code == 401
    signed_in = httpx.get(
        f"{server.url}{CAIRN}/users/current", headers=_basic("root", "root-password-1"), timeout=30
    )
    assert signed_in.json()["user"]["is_admin"] is True


def test_linking_a_logged_model_needs_permission_on_its_experiment(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth_default_permission="NO_PERMISSIONS")
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        mine = client.post(f"{API}/experiments/create", json={"name": "mine"}, headers=ALICE)
        exp_id = mine.json()["experiment_id"]
        run = client.post(f"{API}/runs/create", json={"experiment_id": exp_id}, headers=ALICE)
        run_id = run.json()["run"]["info"]["run_id"]
        hidden = client.post(f"{API}/experiments/create", json={"name": "hidden"}, headers=ADMIN)
        logged = client.post(
            f"{API}/logged-models",
            json={"experiment_id": hidden.json()["experiment_id"]},
            headers=ADMIN,
        )
        model_id = logged.json()["model"]["info"]["model_id"]
        models = {"run_id": run_id, "models": [{"model_id": model_id}]}
        for path in (f"{API}/runs/log-inputs", f"{API}/runs/outputs"):
            response = client.post(path, json=models, headers=ALICE)
            assert f"permission on the experiment of logged model {model_id}" in _error(
                response, 403, "PERMISSION_DENIED"
            )
        client.post(f"{API}/registered-models/create", json={"name": "reg"}, headers=ALICE)
        version = {"name": "reg", "source": f"models:/{model_id}", "model_id": model_id}
        response = client.post(f"{API}/model-versions/create", json=version, headers=ALICE)
        _error(response, 403, "PERMISSION_DENIED")
        own = client.post(f"{API}/logged-models", json={"experiment_id": exp_id}, headers=ALICE)
        own_models = {
            "run_id": run_id,
            "models": [{"model_id": own.json()["model"]["info"]["model_id"]}],
        }
        assert (
            client.post(f"{API}/runs/log-inputs", json=own_models, headers=ALICE).status_code == 200
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}"
    uri: str = request.getfixturevalue("postgres_uri")
    return uri


def test_auth_store_on_both_databases(store_uri: str, tmp_path: Path) -> None:
    from cairn.models.registry.stores.sql import SqlRegistryStore
    from cairn.server.auth.entities import Permission
    from cairn.tracking.stores.sql.store import SqlStore

    tracking = SqlStore(store_uri, str(tmp_path / "artifacts"))
    exp_id = tracking.create_experiment("e")
    registry = SqlRegistryStore(tracking.engine)
    registry.create_registered_model("m", {}, None)
    store = AuthStore(tracking.engine)
    try:
        user = store.create_user("gina", "gina-password-1")
        assert store.check_password("gina", "gina-password-1") == user
        assert store.check_password("gina", "wrong-password") is None
        token, secret = store.create_token("gina", "ci")
        assert store.user_for_token(secret) == user and store.token_owner(token.token_id) == "gina"
        store.set_experiment_permission(exp_id, "gina", Permission.EDIT, create=True)
        with pytest.raises(AlreadyExistsError, match="already has a permission on experiment"):
            store.set_experiment_permission(exp_id, "gina", Permission.READ, create=True)
        store.set_model_permission("m", "gina", Permission.READ, create=True)
        assert store.experiment_permission(user.user_id, exp_id) is Permission.EDIT
        assert store.model_permission(user.user_id, "m") is Permission.READ
        assert store.experiment_permissions_of(user.user_id) == {exp_id: Permission.EDIT}
        run = tracking.create_run(exp_id, "gina", 0, [], "r")
        assert store.experiment_of_run(run.info.run_id) == exp_id
        registry.rename_registered_model("m", "m2")  # the grant follows the model
        assert store.model_permission(user.user_id, "m2") is Permission.READ
        store.delete_user("gina")  # with her token and grants
        assert store.user_for_token(secret) is None
        with pytest.raises(NotFoundError, match="User 'gina' does not exist"):
            store.get_experiment_permission(exp_id, "gina")
    finally:
        registry.close()
        tracking.close()

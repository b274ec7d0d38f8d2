"""The authorization matrix: every route of an ``--auth`` app by {anonymous, READ, EDIT, MANAGE,
admin}, each a real request, against what the rule table says; and the rule table itself.

The default permission is NO_PERMISSIONS, so each role holds exactly the permission it is
named after, granted on the experiment and registered model every request names. Each route
gets fresh resources, so a delete allowed for one role does not change what the next sees.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from cairn.server import ServerSettings, create_app
from cairn.server.auth import ensure_admin
from cairn.server.auth.entities import Permission
from cairn.server.auth.middleware import route_table
from cairn.server.auth.rules import RULES, Access, Rule
from cairn.server.auth.stores.sql import AuthStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import httpx

PASSWORD = "matrix-password-1"
ROLES = ("anonymous", "reader", "editor", "manager", "admin")
ROLE_PERMISSION = {
    "reader": Permission.READ,
    "editor": Permission.EDIT,
    "manager": Permission.MANAGE,
}
API = "/api/2.0/mlflow"
CAIRN = "/api/2.0/cairn"
PROXY = "/api/2.0/mlflow-artifacts"
_counter = itertools.count()


def _headers(role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    raw = base64.b64encode(f"{role}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _settings(tmp_path: Path) -> ServerSettings:
    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = AuthStore.open(uri)
    ensure_admin(store, "admin", PASSWORD)
    for name in (*ROLE_PERMISSION, "victim"):
        store.create_user(name, PASSWORD)
    store.close()
    return ServerSettings(
        backend_store_uri=uri,
        artifacts_destination=str(tmp_path / "artifacts"),
        auth=True,
        auth_default_permission="NO_PERMISSIONS",
        auth_cache_seconds=600.0,
        auth_max_failures=1000,
    )


@pytest.fixture(scope="module", autouse=True)
def _cheap_hashes() -> Iterator[None]:
    """argon2 at its real cost takes ~0.1-0.8 s a hash here; what this module tests is who may
    call what, so hash with the cheapest parameters (tests/server/test_auth.py uses the real)."""
    from argon2 import PasswordHasher

    from cairn.server.auth import passwords

    with pytest.MonkeyPatch.context() as patch:
        cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        patch.setattr(passwords, "_hasher", lambda: cheap)
        yield


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = _settings(tmp_path_factory.mktemp("matrix"))
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


@dataclass
class World:
    """Fresh resources for one route, each role granted its permission on them."""

    experiment_id: str
    experiment_name: str
    run_id: str
    model: str
    logged_model: str
    token_id: str
    user: str

    @property
    def artifact(self) -> str:
        return f"{self.experiment_id}/{self.run_id}/artifacts/data.txt"


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _world(client: TestClient) -> World:
    admin = _headers("admin")
    n = next(_counter)
    exp = _ok(client.post(f"{API}/experiments/create", json={"name": f"e{n}"}, headers=admin))
    experiment_id = exp["experiment_id"]
    run = _ok(
        client.post(f"{API}/runs/create", json={"experiment_id": experiment_id}, headers=admin)
    )
    run_id = run["run"]["info"]["run_id"]
    model = f"m{n}"
    _ok(client.post(f"{API}/registered-models/create", json={"name": model}, headers=admin))
    source = f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model"
    _ok(
        client.post(
            f"{API}/model-versions/create",
            json={"name": model, "source": source, "run_id": run_id},
            headers=admin,
        )
    )
    logged = _ok(
        client.post(f"{API}/logged-models", json={"experiment_id": experiment_id}, headers=admin)
    )
    put = client.put(
        f"{PROXY}/artifacts/{experiment_id}/{run_id}/artifacts/data.txt",
        content=b"x",
        headers=admin,
    )
    assert put.status_code == 200, put.text
    token = _ok(client.post(f"{CAIRN}/tokens/create", json={"username": "reader"}, headers=admin))
    user = f"u{n}"
    _ok(
        client.post(
            f"{API}/users/create", json={"username": user, "password": PASSWORD}, headers=admin
        )
    )
    for role, permission in ROLE_PERMISSION.items():
        grant = {"username": role, "permission": permission.name}
        _ok(
            client.post(
                f"{API}/experiments/permissions/create",
                json={"experiment_id": experiment_id, **grant},
                headers=admin,
            )
        )
        _ok(
            client.post(
                f"{API}/registered-models/permissions/create",
                json={"name": model, **grant},
                headers=admin,
            )
        )
    return World(
        experiment_id,
        f"e{n}",
        run_id,
        model,
        logged["model"]["info"]["model_id"],
        str(token["info"]["id"]),
        user,
    )


Sample = dict[str, Any]


def _samples(w: World, role: str) -> dict[tuple[str, str], Sample]:
    """One request per route, naming ``w``'s resources (``role`` makes created names unique)."""
    n = f"{role}{next(_counter)}"
    exp_q = {"params": {"experiment_id": w.experiment_id}}
    exp_b = {"json": {"experiment_id": w.experiment_id}}
    run_q = {"params": {"run_id": w.run_id}}
    run_b = {"json": {"run_id": w.run_id}}
    name_q = {"params": {"name": w.model}}
    name_b = {"json": {"name": w.model}}
    version_q = {"params": {"name": w.model, "version": "1"}}
    version_b = {"json": {"name": w.model, "version": "1"}}
    lm = f"{API}/logged-models/{w.logged_model}"
    art = w.artifact
    perm = {"username": w.user, "permission": "READ"}
    return {
        ("GET", "/openapi.json"): {},
        ("HEAD", "/openapi.json"): {},
        ("GET", "/docs"): {},
        ("HEAD", "/docs"): {},
        ("GET", "/docs/oauth2-redirect"): {},
        ("HEAD", "/docs/oauth2-redirect"): {},
        ("GET", "/redoc"): {},
        ("HEAD", "/redoc"): {},
        ("GET", "/health"): {},
        ("GET", "/ping"): {},
        ("GET", "/version"): {},
        ("GET", "/assets/{name}"): {"path": "/assets/app.js"},
        ("HEAD", "/assets/{name}"): {"path": "/assets/app.js"},
        **{
            (method, page): {"path": page.replace("{rest:path}", "x")}
            for page in (
                "/",
                "/experiments",
                "/experiments/{rest:path}",
                "/runs/{rest:path}",
                "/compare",
                "/models",
                "/models/{rest:path}",
                "/data",
                "/lineage",
            )
            for method in ("GET", "HEAD")
        },
        ("POST", f"{API}/experiments/create"): {"json": {"name": f"new-{n}"}},
        ("GET", f"{API}/experiments/get"): exp_q,
        ("GET", f"{API}/experiments/get-by-name"): {
            "params": {"experiment_name": w.experiment_name}
        },
        ("POST", f"{API}/experiments/search"): {"json": {}},
        ("GET", f"{API}/experiments/search"): {},
        ("POST", f"{API}/experiments/update"): {
            "json": {"experiment_id": w.experiment_id, "new_name": f"renamed-{n}"}
        },
        ("POST", f"{API}/experiments/delete"): exp_b,
        ("POST", f"{API}/experiments/restore"): exp_b,
        ("POST", f"{API}/experiments/set-experiment-tag"): {
            "json": {"experiment_id": w.experiment_id, "key": "k", "value": "v"}
        },
        ("POST", f"{API}/runs/create"): exp_b,
        ("GET", f"{API}/runs/get"): run_q,
        ("POST", f"{API}/runs/update"): {"json": {"run_id": w.run_id, "status": "RUNNING"}},
        ("POST", f"{API}/runs/delete"): run_b,
        ("POST", f"{API}/runs/restore"): run_b,
        ("POST", f"{API}/runs/search"): {"json": {"experiment_ids": [w.experiment_id]}},
        ("POST", f"{API}/runs/log-metric"): {
            "json": {"run_id": w.run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
        },
        ("POST", f"{API}/runs/log-parameter"): {
            "json": {"run_id": w.run_id, "key": f"p{n}", "value": "1"}
        },
        ("POST", f"{API}/runs/set-tag"): {"json": {"run_id": w.run_id, "key": "t", "value": "1"}},
        ("POST", f"{API}/runs/delete-tag"): {"json": {"run_id": w.run_id, "key": "t"}},
        ("POST", f"{API}/runs/log-batch"): {
            "json": {"run_id": w.run_id, "metrics": [{"key": "b", "value": 1, "timestamp": 1}]}
        },
        ("POST", f"{API}/runs/log-inputs"): run_b,
        ("POST", f"{API}/runs/outputs"): {"json": {"run_id": w.run_id, "models": []}},
        ("POST", f"{API}/runs/log-model"): {
            "json": {
                "run_id": w.run_id,
                "model_json": '{"artifact_path": "m", "flavors": {}, "utc_time_created": "x"}',
            }
        },
        ("GET", f"{API}/metrics/get-history"): {"params": {"run_id": w.run_id, "metric_key": "m"}},
        ("POST", f"{CAIRN}/runs/create"): {
            "json": {"experiment_id": w.experiment_id, "request_id": f"req-{n}"}
        },
        ("POST", f"{CAIRN}/runs/log-batch"): {
            "json": {"run_id": w.run_id, "request_id": f"req-{n}"}
        },
        ("POST", f"{API}/logged-models"): exp_b,
        ("POST", f"{API}/logged-models/search"): {"json": {"experiment_ids": [w.experiment_id]}},
        ("GET", f"{API}/logged-models/{{model_id}}"): {"path": lm},
        ("PATCH", f"{API}/logged-models/{{model_id}}"): {"path": lm, "json": {"status": "READY"}},
        ("DELETE", f"{API}/logged-models/{{model_id}}"): {"path": lm},
        ("POST", f"{API}/logged-models/{{model_id}}/params"): {
            "path": f"{lm}/params",
            "json": {"params": []},
        },
        ("PATCH", f"{API}/logged-models/{{model_id}}/tags"): {
            "path": f"{lm}/tags",
            "json": {"tags": []},
        },
        ("DELETE", f"{API}/logged-models/{{model_id}}/tags/{{tag_key:path}}"): {
            "path": f"{lm}/tags/k"
        },
        ("GET", f"{API}/logged-models/{{model_id}}/artifacts/directories"): {
            "path": f"{lm}/artifacts/directories"
        },
        ("POST", f"{API}/registered-models/create"): {"json": {"name": f"new-{n}"}},
        ("GET", f"{API}/registered-models/get"): name_q,
        ("POST", f"{API}/registered-models/rename"): {
            "json": {"name": w.model, "new_name": w.model}
        },
        ("PATCH", f"{API}/registered-models/update"): {
            "json": {"name": w.model, "description": "d"}
        },
        ("DELETE", f"{API}/registered-models/delete"): name_b,
        ("GET", f"{API}/registered-models/search"): {},
        ("POST", f"{API}/registered-models/get-latest-versions"): name_b,
        ("GET", f"{API}/registered-models/get-latest-versions"): name_q,
        ("POST", f"{API}/registered-models/set-tag"): {
            "json": {"name": w.model, "key": "k", "value": "v"}
        },
        ("DELETE", f"{API}/registered-models/delete-tag"): {"json": {"name": w.model, "key": "k"}},
        ("POST", f"{API}/registered-models/alias"): {
            "json": {"name": w.model, "alias": "champion", "version": "1"}
        },
        ("DELETE", f"{API}/registered-models/alias"): {
            "json": {"name": w.model, "alias": "champion"}
        },
        ("GET", f"{API}/registered-models/alias"): {
            "params": {"name": w.model, "alias": "champion"}
        },
        ("POST", f"{API}/model-versions/create"): {
            "json": {
                "name": w.model,
                "source": f"mlflow-artifacts:/{w.experiment_id}/{w.run_id}/artifacts/model",
                "run_id": w.run_id,
            }
        },
        ("GET", f"{API}/model-versions/get"): version_q,
        ("PATCH", f"{API}/model-versions/update"): {
            "json": {"name": w.model, "version": "1", "description": "d"}
        },
        ("POST", f"{API}/model-versions/transition-stage"): {
            "json": {"name": w.model, "version": "1", "stage": "Staging"}
        },
        ("DELETE", f"{API}/model-versions/delete"): version_b,
        ("GET", f"{API}/model-versions/search"): {},
        ("GET", f"{API}/model-versions/get-download-uri"): version_q,
        ("POST", f"{API}/model-versions/set-tag"): {
            "json": {"name": w.model, "version": "1", "key": "k", "value": "v"}
        },
        ("DELETE", f"{API}/model-versions/delete-tag"): {
            "json": {"name": w.model, "version": "1", "key": "k"}
        },
        ("GET", f"{API}/artifacts/list"): run_q,
        ("GET", f"{PROXY}/artifacts"): {"params": {"path": f"{w.experiment_id}/{w.run_id}"}},
        ("PUT", f"{PROXY}/artifacts/{{artifact_path:path}}"): {
            "path": f"{PROXY}/artifacts/{art}",
            "content": b"y",
        },
        ("GET", f"{PROXY}/artifacts/{{artifact_path:path}}"): {"path": f"{PROXY}/artifacts/{art}"},
        ("DELETE", f"{PROXY}/artifacts/{{artifact_path:path}}"): {
            "path": f"{PROXY}/artifacts/{art}"
        },
        **{
            ("POST", f"{PROXY}/mpu/{verb}/{{artifact_path:path}}"): {
                "path": f"{PROXY}/mpu/{verb}/{art}",
                "json": {"path": art, "num_parts": 1, "upload_id": "u", "parts": []},
            }
            for verb in ("create", "complete", "abort")
        },
        ("POST", f"{CAIRN}/runs/table"): {"json": {"experiment_ids": [w.experiment_id]}},
        ("POST", f"{CAIRN}/runs/count"): {"json": {"experiment_ids": [w.experiment_id]}},
        ("GET", f"{CAIRN}/runs/columns"): {"params": {"experiment_ids": [w.experiment_id]}},
        ("GET", f"{CAIRN}/experiments/activity"): {},
        ("GET", f"{CAIRN}/metrics/get-history-downsampled"): {
            "params": {"run_id": w.run_id, "metric_key": "m"}
        },
        ("GET", f"{CAIRN}/metrics/summary"): run_q,
        ("GET", f"{CAIRN}/artifacts/preview"): {"params": {"run_id": w.run_id, "path": "data.txt"}},
        ("GET", f"{CAIRN}/artifacts/get"): {"params": {"run_id": w.run_id, "path": "data.txt"}},
        ("GET", f"{CAIRN}/data/tables"): {},
        **{
            ("GET", f"{CAIRN}/data/{view}"): {"params": {"uri": "/nowhere", "version": "0"}}
            for view in ("history", "version")
        },
        ("GET", f"{CAIRN}/data/diff"): {"params": {"uri": "/nowhere", "from": "0", "to": "1"}},
        ("GET", f"{CAIRN}/lineage"): {"params": {"model": w.model, "version": "1"}},
        ("POST", f"{API}/users/create"): {"json": {"username": f"new-{n}", "password": PASSWORD}},
        ("GET", f"{API}/users/get"): {"params": {"username": "reader"}},
        ("PATCH", f"{API}/users/update-password"): {
            "json": {"username": "reader", "password": PASSWORD}
        },
        ("PATCH", f"{API}/users/update-admin"): {"json": {"username": w.user, "is_admin": False}},
        ("DELETE", f"{API}/users/delete"): {"json": {"username": w.user}},
        ("GET", f"{CAIRN}/users/list"): {},
        ("GET", f"{CAIRN}/users/current"): {},
        ("POST", f"{CAIRN}/tokens/create"): {"json": {"name": "t"}},
        ("GET", f"{CAIRN}/tokens/list"): {},
        ("POST", f"{CAIRN}/tokens/revoke"): {"json": {"token_id": w.token_id}},
        ("POST", f"{API}/experiments/permissions/create"): {
            "json": {"experiment_id": w.experiment_id, **perm}
        },
        ("GET", f"{API}/experiments/permissions/get"): {
            "params": {"experiment_id": w.experiment_id, "username": "reader"}
        },
        ("PATCH", f"{API}/experiments/permissions/update"): {
            "json": {"experiment_id": w.experiment_id, "username": "reader", "permission": "READ"}
        },
        ("DELETE", f"{API}/experiments/permissions/delete"): {
            "json": {"experiment_id": w.experiment_id, "username": w.user}
        },
        ("POST", f"{API}/registered-models/permissions/create"): {
            "json": {"name": w.model, **perm}
        },
        ("GET", f"{API}/registered-models/permissions/get"): {
            "params": {"name": w.model, "username": "reader"}
        },
        ("PATCH", f"{API}/registered-models/permissions/update"): {
            "json": {"name": w.model, "username": "reader", "permission": "READ"}
        },
        ("DELETE", f"{API}/registered-models/permissions/delete"): {
            "json": {"name": w.model, "username": w.user}
        },
    }


def _expected(rule: Rule, role: str, sample: Sample) -> bool:
    """Whether ``role`` may make the sample request, by the rule. Samples name resources the
    role holds its permission on; ``reader`` owns the token, and is the user they name (or
    they name none: the request acts on the caller)."""
    if rule.access is Access.PUBLIC:
        return True
    if role == "anonymous":
        return False
    if role == "admin" or rule.access is Access.AUTHENTICATED:
        return True
    if rule.access is Access.ADMIN:
        return False
    for check in rule.checks:
        if check.kind == "token":
            if role != "reader":
                return False
        elif check.kind == "user":
            target = (sample.get("params") or {}).get("username") or (sample.get("json") or {}).get(
                "username"
            )
            if target and target != role:
                return False
        elif ROLE_PERMISSION[role] < check.permission:
            return False
    return True


def _send(client: Any, method: str, template: str, sample: Sample, role: str) -> Any:
    return client.request(
        method,
        sample.get("path", template),
        params=sample.get("params"),
        json=sample.get("json"),
        content=sample.get("content"),
        headers=_headers(role),
    )


def _app_routes(client: TestClient) -> list[tuple[str, str]]:
    return sorted(
        (method, template)
        for _, _, template, methods in route_table(client.app)  # type: ignore[arg-type]
        for method in methods
    )


def test_every_route_has_a_rule_and_every_rule_a_route(client: TestClient) -> None:
    routes = set(_app_routes(client))
    assert len(routes) > 100
    assert sorted(routes - set(RULES)) == [], "routes without an access rule"
    assert sorted(set(RULES) - routes) == [], "rules for routes that do not exist"


def test_rules_follow_the_permission_levels() -> None:
    """Independently of the samples: reads need READ, writes EDIT, deletes and grants MANAGE."""
    for (method, template), rule in RULES.items():
        needed = max(
            (c.permission for c in rule.checks if c.kind not in ("user", "token")), default=None
        )
        if rule.access is not Access.CHECKED or needed is None:
            continue
        last = template.rstrip("/").rsplit("/", 1)[-1]
        if (
            "permissions" in template
            or last in ("delete", "restore")
            or (method == "DELETE" and "tag" not in template and "alias" not in template)
        ):
            assert needed is Permission.MANAGE, (method, template)
        elif method in ("GET", "HEAD") or last in (
            "search",
            "get-latest-versions",
            "table",
            "count",
        ):
            assert needed is Permission.READ, (method, template)
        else:
            assert needed is Permission.EDIT, (method, template)


def test_authorization_matrix(client: TestClient) -> None:
    routes = _app_routes(client)
    outcomes: list[str] = []
    world: World | None = None
    previous = "GET"
    for method, template in routes:
        rule = RULES[(method, template)]
        if world is None or method not in ("GET", "HEAD") or previous not in ("GET", "HEAD"):
            world = _world(client)  # fresh for, and after, anything that may change it
        previous = method
        for role in ROLES:
            sample = _samples(world, role)[(method, template)]
            response = _send(client, method, template, sample, role)
            allowed = _expected(rule, role, sample)
            status = response.status_code
            assert status < 500 or status == 501, (method, template, role, response.text)
            if allowed:
                ok = status not in (401, 403)
            else:
                ok = status == (401 if role == "anonymous" else 403)
            if not ok:
                outcomes.append(f"{method} {template} as {role}: {status} {response.text[:120]}")
    assert outcomes == []


def test_samples_cover_every_route(client: TestClient) -> None:
    world = _world(client)
    assert sorted(_samples(world, "x")) == _app_routes(client)


def test_allowed_requests_really_work(client: TestClient) -> None:
    """The matrix accepts any non-401/403 answer as allowed; here the main ones must succeed."""
    world = _world(client)
    checks = [
        ("editor", "POST", f"{API}/runs/log-metric"),
        ("reader", "GET", f"{API}/runs/get"),
        ("reader", "POST", f"{API}/runs/search"),
        ("reader", "GET", f"{PROXY}/artifacts/{{artifact_path:path}}"),
        ("editor", "PUT", f"{PROXY}/artifacts/{{artifact_path:path}}"),
        ("manager", "POST", f"{API}/experiments/permissions/create"),
        ("reader", "GET", f"{API}/model-versions/get"),
        ("editor", "POST", f"{API}/model-versions/set-tag"),
        ("reader", "GET", f"{CAIRN}/metrics/summary"),
        ("manager", "DELETE", f"{API}/model-versions/delete"),
    ]
    for role, method, template in checks:
        sample = _samples(world, role)[(method, template)]
        response = _send(client, method, template, sample, role)
        assert response.status_code == 200, (role, method, template, response.text)


def test_a_route_added_without_a_rule_is_refused(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))

    def secret() -> dict[str, str]:
        return {"secret": "s"}

    app.add_api_route(f"{CAIRN}/unruled", secret, methods=["GET"])
    with TestClient(app, base_url="http://localhost") as test_client:
        anonymous = test_client.get(f"{CAIRN}/unruled")
        assert anonymous.status_code == 401
        for role in ("reader", "admin"):
            response = test_client.get(f"{CAIRN}/unruled", headers=_headers(role))
            assert response.status_code == 404
            assert "secret" not in response.text


def test_search_answers_only_what_the_caller_may_read(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path)), base_url="http://localhost") as client:
        _check_search_filters(client)


def _check_search_filters(client: TestClient) -> None:
    mine, other = _world(client), _world(client)
    for path, key, field, wanted in (
        (f"{API}/experiments/search", "experiments", "experiment_id", mine.experiment_id),
        (f"{API}/registered-models/search", "registered_models", "name", mine.model),
        (f"{API}/model-versions/search", "model_versions", "name", mine.model),
        (f"{CAIRN}/experiments/activity", "experiments", "experiment_id", mine.experiment_id),
    ):
        # reader holds READ on every world's resources; victim holds nothing anywhere.
        seen_by_reader = {
            item[field]
            for item in _ok(
                client.get(path, headers=_headers("reader"), params={"max_results": 1000})
            ).get(key, [])
        }
        seen_by_victim = _ok(client.get(path, headers=_headers("victim"))).get(key, [])
        assert {wanted, _other(other, field)} <= seen_by_reader, path
        assert seen_by_victim == [], path
        seen_by_admin = {
            item[field]
            for item in _ok(
                client.get(path, headers=_headers("admin"), params={"max_results": 1000})
            ).get(key, [])
        }
        assert seen_by_reader <= seen_by_admin


def _other(world: World, field: str) -> str:
    return world.experiment_id if field == "experiment_id" else world.model


def test_denied_log_metric_is_not_stored(client: TestClient) -> None:
    """The fast path answers runs/log-metric before routing: the middleware covers it too."""
    world = _world(client)
    body = {"run_id": world.run_id, "key": "sneaky", "value": 1.0, "timestamp": 1, "step": 0}
    response = client.post(f"{API}/runs/log-metric", json=body, headers=_headers("reader"))
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    run = _ok(
        client.get(f"{API}/runs/get", params={"run_id": world.run_id}, headers=_headers("admin"))
    )
    assert "sneaky" not in {m["key"] for m in run["run"]["data"].get("metrics", [])}


def test_artifact_paths_outside_an_experiment_need_admin(client: TestClient) -> None:
    world = _world(client)
    reader = _headers("reader")
    assert client.get(f"{PROXY}/artifacts", headers=reader).status_code == 403
    assert client.get(f"{PROXY}/artifacts", headers=_headers("admin")).status_code == 200
    other = _world(client)
    # reader has READ on both worlds; victim on none: a path naming one experiment and
    # climbing into another is refused before any route sees it.
    sneaky = f"{PROXY}/artifacts/{world.experiment_id}/%2e%2e/{other.experiment_id}/x"
    response = client.get(sneaky, headers=_headers("victim"))
    assert response.status_code in (400, 403)
    assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "PERMISSION_DENIED")


@pytest.mark.slow
def test_matrix_through_a_real_socket(tmp_path: Path) -> None:
    """A handful of rows through uvicorn on 127.0.0.1, the fast path included."""
    import httpx
    import uvicorn
    from tests.conftest import _free_port

    settings = _settings(tmp_path)
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            world = _world(http)  # type: ignore[arg-type]
            for method, template in (
                ("POST", f"{API}/runs/log-metric"),
                ("GET", f"{API}/runs/get"),
                ("PUT", f"{PROXY}/artifacts/{{artifact_path:path}}"),
                ("GET", f"{PROXY}/artifacts/{{artifact_path:path}}"),
                ("POST", f"{API}/experiments/delete"),
                ("POST", f"{API}/users/create"),
                ("GET", "/health"),
            ):
                rule = RULES[(method, template)]
                for role in ROLES:
                    sample = _samples(world, role)[(method, template)]
                    response = _send(http, method, template, sample, role)
                    if _expected(rule, role, sample):
                        assert response.status_code not in (401, 403), (template, role)
                    else:
                        assert response.status_code == (401 if role == "anonymous" else 403), (
                            template,
                            role,
                            response.text,
                        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)

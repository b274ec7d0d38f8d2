"""schemathesis against ``/openapi.json``: every documented operation, fuzzed, never a 5xx.

The app runs in-process on a store seeded with an experiment, a run (with an artifact), a
registered model and a version; half the generated cases have their ids replaced by those, so
requests reach the store and not only the "does not exist" answers. Each operation gets up to
``2 * EXAMPLES`` cases, valid (positive) and invalid (negative) mixed, derandomized so a run
is repeatable. A second run fuzzes an ``--auth`` server as its admin, a plain user and an
anonymous caller. The figures (operations, cases, requests, statuses, 5xx) go to
``test-output/schemathesis.json`` for SECURITY.md.

The multipart-upload endpoints answer 501 by design (MLflow clients read it as "use one PUT");
those 501s are counted apart, and any other status of 500 or more fails the test.
"""

from __future__ import annotations

import base64
import collections
import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cairn.server import ServerSettings, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from fastapi import FastAPI

pytestmark = pytest.mark.slow

EXAMPLES = 30  # per operation, for valid and invalid cases together: 2 * EXAMPLES
AUTH_EXAMPLES = 30  # per operation on the --auth server, the three callers together
API = "/api/2.0/mlflow"
MULTIPART = "/api/2.0/mlflow-artifacts/mpu/"
REPORT = Path(__file__).resolve().parents[2] / "test-output" / "schemathesis.json"


def _seed(app: FastAPI, headers: dict[str, str]) -> dict[str, Any]:
    """Real ids the fuzzer can hit: an experiment, a run with an artifact, a model version."""
    with TestClient(app, headers=headers) as client:
        experiment = client.post(f"{API}/experiments/create", json={"name": "fuzzed"}).json()
        experiment_id = experiment["experiment_id"]
        run = client.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()
        run_id = run["run"]["info"]["run_id"]
        client.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1.0})
        client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"})
        client.put(
            f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/a.txt",
            content=b"x",
        )
        client.post(f"{API}/registered-models/create", json={"name": "m"})
        client.post(
            f"{API}/model-versions/create",
            json={"name": "m", "source": f"runs:/{run_id}/model", "run_id": run_id},
        )
        model = client.post(f"{API}/logged-models", json={"experiment_id": experiment_id}).json()
    return {
        "experiment_id": experiment_id,
        "experiment_ids": [experiment_id],
        "run_id": run_id,
        "run_uuid": run_id,
        "model_id": model["model"]["info"]["model_id"],
        "name": "m",
        "version": "1",
        "key": "m",
        "metric_key": "m",
    }


def _fuzz(app: FastAPI, callers: list[dict[str, str]], examples: int, name: str) -> dict[str, Any]:
    """Fuzz every operation as each caller in turn; fail on any 5xx but the designed 501s."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    known = _seed(app, callers[0])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    def with_known_ids(drawn: tuple[Any, bool, int]) -> tuple[Any, int]:
        case, use_known, caller = drawn
        if use_known:
            for part in ("body", "query", "path_parameters"):
                values = getattr(case, part, None)
                if isinstance(values, dict):
                    for key in values.keys() & known.keys():
                        values[key] = known[key]
        return case, caller

    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []
    by_operation: dict[str, int] = {}
    designed_501 = 0

    def record(operation: Any, case: Any, response: Any) -> None:
        nonlocal designed_501
        label = f"{operation.method.upper()} {operation.path}"
        by_operation[label] = by_operation.get(label, 0) + 1
        statuses[response.status_code] += 1
        if response.status_code == 501 and operation.path.startswith(MULTIPART):
            designed_501 += 1
        elif response.status_code >= 500:
            failures.append(
                f"{label} -> {response.status_code} {response.text[:200]!r}\n"
                f"  {case.as_curl_command()}"
            )

    def fuzz(operation: Any) -> None:
        cases = st.tuples(
            st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE),
                operation.as_strategy(GenerationMode.NEGATIVE),
            ),
            st.booleans(),
            st.integers(0, len(callers) - 1),
        ).map(with_known_ids)

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(cases)
        def exercise(drawn: tuple[Any, int]) -> None:
            case, caller = drawn
            record(operation, case, case.call(headers=callers[caller]))

        exercise()

    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 60, "the schema lists every route"
    for operation in operations:
        fuzz(operation)

    figures = {
        "operations": len(operations),
        "max_examples_per_operation": examples,
        "callers": len(callers),
        "cases": sum(by_operation.values()),
        "requests": sum(statuses.values()),
        "status_counts": {str(code): n for code, n in sorted(statuses.items())},
        "5xx": sum(n for code, n in statuses.items() if code >= 500) - designed_501,
        "designed_501_multipart": designed_501,
        "seconds": round(time.monotonic() - started, 1),
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
    REPORT.write_text(json.dumps({**report, name: figures}, indent=2) + "\n")
    print(json.dumps({name: figures}))
    assert failures == [], "5xx answers:\n" + "\n".join(failures[:20])
    assert figures["5xx"] == 0
    assert len(by_operation) == len(operations), "every operation was called"
    return figures


def test_no_operation_answers_5xx(tmp_path: Path) -> None:
    app = create_app(ServerSettings(backend_store_uri=str(tmp_path / "store")))
    _fuzz(app, [{}], 2 * EXAMPLES, "open")


def test_no_operation_answers_5xx_with_auth(tmp_path: Path) -> None:
    """The same on an ``--auth`` server, as its admin, a plain user and an anonymous caller:
    the authorization middleware reads ids from fuzzed bodies and queries before any route."""
    from cairn.server.auth import ensure_admin
    from cairn.server.auth.stores.sql import AuthStore

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = AuthStore.open(uri)
    ensure_admin(store, "admin", "fuzzing-admin-password")
    store.create_user("alice", "fuzzing-alice-password")
    store.close()
    settings = ServerSettings(
        backend_store_uri=uri, artifacts_destination=str(tmp_path / "artifacts"), auth=True
    )

    def basic(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    callers = [
        basic("alice", "fuzzing-alice-password"),  # seeds, so she holds MANAGE on the seeds
        basic("admin", "fuzzing-admin-password"),
        {},
    ]
    figures = _fuzz(create_app(settings), callers, AUTH_EXAMPLES, "auth")
    assert figures["status_counts"].get("429", 0) == 0, "no caller was locked out"

"""RestStore against a real tracking server on 127.0.0.1, plus retries against a scripted stub."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from cairn.entities import Dataset as DatasetEntity
from cairn.entities import (
    DatasetInput,
    ExperimentTag,
    LifecycleStage,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from cairn.errors import (
    AlreadyExistsError,
    CairnError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    RequestLimitExceededError,
    UnavailableError,
)
from cairn.tracking.stores.rest import RestStore, _batches

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _fast_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("CAIRN_HTTP_RETRY_SECONDS", "2")


@pytest.fixture
def store(live_server: Any) -> Iterator[RestStore]:
    rest = RestStore(live_server.url, offline_logging=False)
    yield rest
    rest.close()


def _run(store: RestStore, experiment_id: str = "0", name: str = "r", **tags: str) -> str:
    run_tags = [RunTag(k, v) for k, v in tags.items()]
    return store.create_run(experiment_id, "ana", 1_700_000_000_000, run_tags, name).info.run_id


# -- the store contract -------------------------------------------------------------------------


def test_experiments_round_trip(store: RestStore) -> None:
    exp_id = store.create_experiment("rest-exp", tags=[ExperimentTag("team", "vision")])
    experiment = store.get_experiment(exp_id)
    assert experiment.name == "rest-exp"
    assert experiment.tags["team"] == "vision"
    assert store.get_experiment_by_name("rest-exp") == experiment
    assert store.get_experiment_by_name("no-such-experiment") is None

    with pytest.raises(AlreadyExistsError, match="already exists"):
        store.create_experiment("rest-exp")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get_experiment("987654")

    store.set_experiment_tag(exp_id, ExperimentTag("stage", "dev"))
    store.rename_experiment(exp_id, "rest-exp-2")
    assert store.get_experiment(exp_id).tags["stage"] == "dev"
    assert store.get_experiment(exp_id).name == "rest-exp-2"

    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage is LifecycleStage.DELETED
    deleted = store.search_experiments(ViewType.DELETED_ONLY)
    assert [e.experiment_id for e in deleted] == [exp_id]
    store.restore_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage is LifecycleStage.ACTIVE


def test_search_experiments_pages_and_filters(store: RestStore) -> None:
    for i in range(5):
        store.create_experiment(f"paged-{i}")
    first = store.search_experiments(ViewType.ACTIVE_ONLY, max_results=4)
    assert len(first) == 4 and first.token
    rest = store.search_experiments(ViewType.ACTIVE_ONLY, max_results=4, page_token=first.token)
    names = [e.name for e in [*first, *rest]]
    assert names == ["Default", *(f"paged-{i}" for i in range(5))]
    assert rest.token is None
    matched = store.search_experiments(ViewType.ALL, name_like="paged-%")
    assert len(matched) == 5


def test_run_lifecycle(store: RestStore) -> None:
    run = store.create_run("0", "ana", 1_700_000_000_000, [RunTag("team", "nlp")], "first")
    info = run.info
    assert info.status is RunStatus.RUNNING
    assert info.artifact_uri.startswith("mlflow-artifacts:")
    fetched = store.get_run(info.run_id)
    assert fetched.info == info
    assert fetched.data.tags["team"] == "nlp"
    assert fetched.data.tags["mlflow.runName"] == "first"

    ended = store.update_run_info(info.run_id, RunStatus.FINISHED, 1_700_000_005_000)
    assert ended.status is RunStatus.FINISHED
    assert ended.end_time == 1_700_000_005_000
    renamed = store.update_run_info(info.run_id, None, None, run_name="second")
    assert renamed.run_name == "second"

    store.delete_run(info.run_id)
    assert store.get_run(info.run_id).info.lifecycle_stage is LifecycleStage.DELETED
    with pytest.raises(InvalidStateError, match="deleted"):
        store.log_batch(info.run_id, tags=[RunTag("late", "x")])
    store.restore_run(info.run_id)
    assert store.get_run(info.run_id).info.lifecycle_stage is LifecycleStage.ACTIVE

    with pytest.raises(NotFoundError, match="does not exist"):
        store.get_run("0123456789abcdef0123456789abcdef")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.create_run("424242", "ana", 0, [], "orphan")


def test_create_run_with_a_request_id_is_idempotent(store: RestStore) -> None:
    first = store.create_run("0", "ana", 1, [], "once", request_id="req-create-1")
    again = store.create_run("0", "ana", 1, [], "once", request_id="req-create-1")
    assert again.info.run_id == first.info.run_id
    assert len(store.search_runs(["0"], None, ViewType.ALL, 100, None, None)) == 1


def test_log_batch_splits_into_rest_sized_requests(
    store: RestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _run(store)
    sent: list[dict[str, Any]] = []
    call = store.session.call

    def spy(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if path.endswith("log-batch"):
            sent.append(kwargs["body"])
        return call(method, path, **kwargs)

    monkeypatch.setattr(store.session, "call", spy)
    metrics = [Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(2500)]
    params = [Param(f"p{i}", str(i)) for i in range(150)]
    tags = [RunTag(f"t{i}", str(i)) for i in range(150)]
    store.log_batch(run_id, metrics, params, tags)

    assert len(sent) == 3
    for body in sent:
        assert len(body["metrics"]) <= 1000
        assert len(body["params"]) <= 100
        assert len(body["tags"]) <= 100
        assert len(body["metrics"]) + len(body["params"]) + len(body["tags"]) <= 1000
    assert len({body["request_id"] for body in sent}) == 3

    run = store.get_run(run_id)
    assert len(run.data.params) == 150
    assert {f"t{i}" for i in range(150)} <= set(run.data.tags)
    history = store.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(2500))
    assert history.token is None


def test_log_batch_request_id_makes_a_repeat_a_no_op(store: RestStore) -> None:
    run_id = _run(store)
    metrics = [Metric("m", float(i), 1, i) for i in range(1200)]
    store.log_batch(run_id, metrics, request_id="req-batch-1")
    store.log_batch(run_id, metrics, request_id="req-batch-1")  # a caller's retry
    assert len(store.get_metric_history(run_id, "m")) == 1200


def test_batches_respect_every_limit() -> None:
    metrics = [Metric("m", 0.0, 0, i) for i in range(1950)]
    params = [Param(f"p{i}", "v") for i in range(250)]
    chunks = list(_batches(metrics, params, []))
    assert [(len(m), len(p), len(t)) for m, p, t in chunks] == [
        (900, 100, 0),
        (900, 100, 0),
        (150, 50, 0),
    ]
    assert list(_batches([], [], [])) == []


def test_metric_history_pages(store: RestStore) -> None:
    run_id = _run(store)
    values = [0.5, math.nan, math.inf, -math.inf, 2.0]
    store.log_batch(run_id, [Metric("acc", v, 10 + i, i) for i, v in enumerate(values)])
    page = store.get_metric_history(run_id, "acc", max_results=2)
    assert [m.step for m in page] == [0, 1] and page.token
    second = store.get_metric_history(run_id, "acc", max_results=2, page_token=page.token)
    assert [m.step for m in second] == [2, 3]
    everything = store.get_metric_history(run_id, "acc")
    assert math.isnan(everything[1].value)
    assert [m.value for m in everything[2:]] == [math.inf, -math.inf, 2.0]
    assert store.get_metric_history(run_id, "missing") == []


def test_search_runs_filter_order_and_pages(store: RestStore) -> None:
    exp_id = store.create_experiment("search-me")
    for i in range(5):
        run_id = _run(store, exp_id, f"run-{i}")
        store.log_batch(
            run_id, [Metric("mae", i / 10, 1, 0)], [Param("alpha", str(i % 2))], [RunTag("k", "v")]
        )
    found = store.search_runs(
        [exp_id], "metrics.mae < 0.35 and params.alpha = '1'", ViewType.ACTIVE_ONLY, 10, None, None
    )
    assert sorted(r.info.run_name for r in found) == ["run-1", "run-3"]
    ordered = store.search_runs([exp_id], None, ViewType.ACTIVE_ONLY, 2, ["metrics.mae DESC"], None)
    assert [r.info.run_name for r in ordered] == ["run-4", "run-3"] and ordered.token
    rest = store.search_runs(
        [exp_id], None, ViewType.ACTIVE_ONLY, 10, ["metrics.mae DESC"], ordered.token
    )
    assert [r.info.run_name for r in rest] == ["run-2", "run-1", "run-0"]
    assert rest[0].data.metrics["mae"] == pytest.approx(0.2)
    with pytest.raises(InvalidParameterError, match=r"metrics\.mae"):
        store.search_runs([exp_id], "metrics.mae <<< 1", ViewType.ALL, 10, None, None)


def test_tags_set_overwrite_and_delete(store: RestStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, tags=[RunTag("stage", "dev")])
    store.log_batch(run_id, tags=[RunTag("stage", "prod")])
    assert store.get_run(run_id).data.tags["stage"] == "prod"
    store.delete_tag(run_id, "stage")
    assert "stage" not in store.get_run(run_id).data.tags
    with pytest.raises(NotFoundError, match="no tag 'stage'"):
        store.delete_tag(run_id, "stage")


def test_params_are_write_once(store: RestStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, params=[Param("alpha", "0.5")])
    store.log_batch(run_id, params=[Param("alpha", "0.5")])
    with pytest.raises(InvalidParameterError, match="write-once"):
        store.log_batch(run_id, params=[Param("alpha", "0.7")])
    store.update_run_info(run_id, RunStatus.FINISHED, 5)
    with pytest.raises(InvalidStateError, match="FINISHED"):
        store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)])


def test_log_inputs(store: RestStore) -> None:
    run_id = _run(store)
    dataset = DatasetEntity("train", "abc123", "local", '{"uri": "/data/train.csv"}')
    store.log_inputs(run_id, [DatasetInput(dataset, {"mlflow.data.context": "training"})])
    store.log_inputs(run_id, [DatasetInput(dataset, {"mlflow.data.context": "training"})])
    inputs = store.get_run(run_id).inputs.dataset_inputs
    assert [item.dataset.digest for item in inputs] == ["abc123"]


def test_default_artifact_root_is_empty(store: RestStore) -> None:
    assert store.default_artifact_root == ""


def _median_ms(call: Any, count: int = 300) -> float:
    durations = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations) * 1000


# A Nagle + delayed-ACK stall costs ~40 ms on every request; a healthy keep-alive request here
# takes 1-3 ms even on a busy machine. The median tells the two apart without timing the suite.
STALL_MS = 20.0


def test_keep_alive_requests_do_not_stall(store: RestStore) -> None:
    run_id = _run(store)
    store.log_batch(run_id, tags=[RunTag("warm", "up")])
    median = _median_ms(lambda i: store.log_batch(run_id, tags=[RunTag("counter", str(i))]))
    print(f"\nmedian set-tag request on a kept-alive connection: {median:.2f} ms")
    assert median < STALL_MS
    assert store.get_run(run_id).data.tags["counter"] == "299"


async def _bare_app(scope: Any, receive: Any, send: Any) -> None:
    """The least an ASGI server can answer: ``{}``; leaves only client and transport costs."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def test_no_delayed_ack_stall_per_request(unused_url: str) -> None:
    """POSTs go out as headers then body: without TCP_NODELAY each would wait ~40 ms."""
    import uvicorn

    port = int(unused_url.rsplit(":", 1)[1])
    server = uvicorn.Server(
        uvicorn.Config(_bare_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    store = RestStore(unused_url, offline_logging=False)
    try:
        body = {"run_id": "r", "tags": [{"key": "k", "value": "v"}], "request_id": "x"}
        store.session.call("POST", "/api/2.0/cairn/runs/log-batch", body=body)
        median = _median_ms(
            lambda _: store.session.call("POST", "/api/2.0/cairn/runs/log-batch", body=body)
        )
    finally:
        store.close()
        server.should_exit = True
        thread.join(timeout=15)
    print(f"\nmedian POST to a bare ASGI app: {median:.2f} ms")
    assert median < STALL_MS


def test_import_cairn_does_not_load_httpx() -> None:
    code = (
        "import sys, cairn, cairn.tracking.fluent, cairn.tracking.artifacts\n"
        "print(','.join(m for m in ('httpx', 'tenacity', 'httpcore') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- retries and error mapping against a scripted stub ------------------------------------------


class _Stub:
    """A tiny HTTP/1.1 server on 127.0.0.1 answering from a script of (status, headers, body)."""

    def __init__(self, script: Callable[[str, str, int], tuple[int, dict[str, str], Any]]):
        self.script = script
        self.requests: list[tuple[str, str, float]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub.requests.append((self.command, self.path, time.monotonic()))
                status, headers, body = stub.script(self.command, self.path, len(stub.requests))
                data = json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Stub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


_EXPERIMENT = {"experiment": {"experiment_id": "7", "name": "e", "artifact_location": ""}}


def test_retries_5xx_then_succeeds() -> None:
    def script(method: str, path: str, n: int) -> tuple[int, dict[str, str], Any]:
        if n <= 2:
            return 503, {}, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}
        return 200, {}, _EXPERIMENT

    with _Stub(script) as stub:
        store = RestStore(stub.url, retry_seconds=5, offline_logging=False)
        try:
            assert store.get_experiment("7").name == "e"
        finally:
            store.close()
    assert len(stub.requests) == 3


def test_429_honours_retry_after() -> None:
    def script(method: str, path: str, n: int) -> tuple[int, dict[str, str], Any]:
        if n == 1:
            return 429, {"Retry-After": "1"}, {"error_code": "REQUEST_LIMIT_EXCEEDED"}
        return 200, {}, _EXPERIMENT

    with _Stub(script) as stub:
        store = RestStore(stub.url, retry_seconds=5, offline_logging=False)
        try:
            store.get_experiment("7")
        finally:
            store.close()
    (_, _, first), (_, _, second) = stub.requests
    assert second - first >= 0.95


def test_retry_time_is_bounded() -> None:
    def script(method: str, path: str, n: int) -> tuple[int, dict[str, str], Any]:
        return 503, {}, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "down for upgrade"}

    with _Stub(script) as stub:
        store = RestStore(stub.url, retry_seconds=0.6, offline_logging=False)
        start = time.monotonic()
        try:
            with pytest.raises(UnavailableError, match="down for upgrade"):
                store.get_experiment("7")
        finally:
            store.close()
    assert time.monotonic() - start < 3
    assert len(stub.requests) >= 2


def test_retry_after_longer_than_the_budget_gives_up() -> None:
    def script(method: str, path: str, n: int) -> tuple[int, dict[str, str], Any]:
        return (
            429,
            {"Retry-After": "30"},
            {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow"},
        )

    with _Stub(script) as stub:
        store = RestStore(stub.url, retry_seconds=2, offline_logging=False)
        start = time.monotonic()
        try:
            with pytest.raises(RequestLimitExceededError, match="slow"):
                store.get_experiment("7")
        finally:
            store.close()
    assert time.monotonic() - start < 2
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "gone"}, NotFoundError, "gone"),
        (400, {"error_code": "INVALID_STATE", "message": "odd"}, InvalidStateError, "odd"),
        (403, {"error_code": "PERMISSION_DENIED", "message": "no"}, PermissionDeniedError, "no"),
        (
            413,
            {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "big"},
            RequestLimitExceededError,
            "big",
        ),
        (418, {"error_code": "I_AM_A_TEAPOT", "message": "tea"}, CairnError, "tea"),
        (500, {"error_code": "INTERNAL_ERROR", "message": "bug"}, CairnError, "bug"),
        (502, {"unexpected": True}, UnavailableError, "HTTP 502"),
    ],
)
def test_errors_map_to_cairn_exceptions(
    status: int, body: Any, error: type[CairnError], message: str
) -> None:
    def script(method: str, path: str, n: int) -> tuple[int, dict[str, str], Any]:
        return status, {}, body

    with _Stub(script) as stub:
        store = RestStore(stub.url, retry_seconds=0, offline_logging=False)
        try:
            with pytest.raises(error, match=message) as caught:
                store.get_experiment("7")
        finally:
            store.close()
    assert type(caught.value) is error
    assert caught.value.http_status == status


def test_connection_refused_is_unavailable(unused_url: str) -> None:
    store = RestStore(unused_url, retry_seconds=0.3, offline_logging=False)
    try:
        with pytest.raises(UnavailableError, match="Cannot reach the tracking server"):
            store.get_experiment("0")
    finally:
        store.close()


def test_plain_mlflow_server_gets_mlflow_endpoints() -> None:
    run = {
        "info": {"run_id": "abc", "experiment_id": "0", "status": "RUNNING", "start_time": 1},
        "data": {"tags": [{"key": "mlflow.runName", "value": "r"}]},
    }

    def script(method: str, path: str, n: int) -> tuple[int, dict[str, str], Any]:
        if path.startswith("/api/2.0/cairn/"):
            return 404, {}, {"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"}
        if path.endswith("runs/create"):
            return 200, {}, {"run": run}
        return 200, {}, {}

    with _Stub(script) as stub:
        store = RestStore(stub.url, retry_seconds=0, offline_logging=False)
        try:
            assert store.create_run("0", "ana", 1, [], "r").info.run_id == "abc"
            store.log_batch("abc", metrics=[Metric("m", 1.0, 1, 0)])
        finally:
            store.close()
    paths = [path for _, path, _ in stub.requests]
    assert paths == [
        "/api/2.0/cairn/runs/create",
        "/api/2.0/mlflow/runs/create",
        "/api/2.0/mlflow/runs/log-batch",
    ]


@pytest.fixture
def unused_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"

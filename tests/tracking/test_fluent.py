from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cairn
from cairn.entities import RunStatus
from cairn.errors import InvalidParameterError, InvalidStateError, NotFoundError
from cairn.tracking._environment import PACKAGES_ARTIFACT


@pytest.fixture(params=["async", "sync"])
def logging_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CAIRN_ASYNC_LOGGING", "true" if request.param == "async" else "false")
    return str(request.param)


@pytest.fixture
def tracking(store_uri: str) -> str:
    cairn.set_tracking_uri(store_uri)
    return store_uri


def test_run_logs_params_metrics_tags(tracking: str, logging_mode: str) -> None:
    cairn.set_experiment("fluent")
    with cairn.start_run(run_name="train", tags={"team": "vision"}) as run:
        cairn.log_param("layers", 3)
        cairn.log_params({"alpha": 0.5, "optimizer": "adam"})
        for step in range(5):
            cairn.log_metric("mae", 1.0 / (step + 1), step=step)
        cairn.log_metrics({"rmse": 0.3, "r2": 0.8}, step=4)
        cairn.set_tag("stage", "dev")
        cairn.set_tags({"owner": "ana"})
    stored = cairn.get_run(run.info.run_id)
    assert stored.info.status is RunStatus.FINISHED
    assert stored.info.end_time is not None
    assert stored.data.params == {"layers": "3", "alpha": "0.5", "optimizer": "adam"}
    assert stored.data.metrics == {"mae": 0.2, "rmse": 0.3, "r2": 0.8}
    assert {"team": "vision", "stage": "dev", "owner": "ana"}.items() <= stored.data.tags.items()
    client = cairn.TrackingClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "mae")] == [0, 1, 2, 3, 4]


def test_exception_marks_run_failed_and_interrupt_killed(tracking: str) -> None:
    with pytest.raises(ValueError, match="boom"), cairn.start_run() as run:
        raise ValueError("boom")
    assert cairn.get_run(run.info.run_id).info.status is RunStatus.FAILED
    assert cairn.active_run() is None
    with pytest.raises(KeyboardInterrupt), cairn.start_run() as run:
        raise KeyboardInterrupt
    assert cairn.get_run(run.info.run_id).info.status is RunStatus.KILLED


def test_nested_runs_record_parent(tracking: str) -> None:
    with cairn.start_run() as parent:
        with pytest.raises(InvalidStateError, match="already active"):
            cairn.start_run()
        with cairn.start_run(nested=True) as child:
            assert cairn.active_run() is child
        assert cairn.active_run() is parent
    tags = cairn.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id


def test_resume_finished_run_by_id(tracking: str) -> None:
    with cairn.start_run() as run:
        cairn.log_metric("m", 1.0, step=0)
    with cairn.start_run(run_id=run.info.run_id):
        cairn.log_metric("m", 2.0, step=1)
    resumed = cairn.get_run(run.info.run_id)
    assert resumed.info.status is RunStatus.FINISHED
    assert resumed.data.metrics["m"] == 2.0
    with pytest.raises(NotFoundError, match="Run 'missing' does not exist"):
        cairn.start_run(run_id="missing")


def test_run_id_from_environment_is_resumed(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = cairn.TrackingClient()
    run = client.create_run("0", run_name="launched")
    monkeypatch.setenv("CAIRN_RUN_ID", run.info.run_id)
    with cairn.start_run() as active:
        cairn.log_param("p", 1)
    assert active.info.run_id == run.info.run_id
    assert client.get_run(run.info.run_id).data.params == {"p": "1"}


def test_launcher_managed_run_logs_by_rank_and_is_ended_by_the_launcher(
    tracking: str, monkeypatch: pytest.MonkeyPatch, logging_mode: str
) -> None:
    client = cairn.TrackingClient()
    run_id = client.create_run("0", run_name="launched").info.run_id
    monkeypatch.setenv("CAIRN_RUN_ID", run_id)
    monkeypatch.setenv("CAIRN_RUN_MANAGED", "true")
    monkeypatch.setenv("RANK", "1")
    with cairn.start_run():
        cairn.log_param("lr", 0.1)  # rank 0 owns params: dropped here, but still validated
        with pytest.raises(InvalidParameterError, match="Invalid param name"):
            cairn.log_param("bad*key", 1)
        cairn.log_metric("loss", 0.5)
        cairn.log_metrics({"acc": 0.9})
    stored = client.get_run(run_id)
    assert stored.info.status is RunStatus.RUNNING  # the launcher ends it, from the exit status
    assert stored.data.params == {}
    assert stored.data.metrics == {"loss/rank1": 0.5, "acc/rank1": 0.9}
    monkeypatch.setenv("RANK", "0")
    cairn.log_metric("loss", 0.4)  # logging with no active run adopts the run again
    cairn.log_params({"lr": 0.1})
    cairn.end_run()
    stored = client.get_run(run_id)
    assert stored.info.status is RunStatus.RUNNING
    assert stored.data.params == {"lr": "0.1"}
    assert stored.data.metrics == {"loss": 0.4, "loss/rank1": 0.5, "acc/rank1": 0.9}


def test_logging_without_active_run_starts_one(tracking: str) -> None:
    cairn.log_metric("auto", 1.0)
    active = cairn.active_run()
    assert active is not None
    cairn.end_run()
    assert cairn.get_run(active.info.run_id).data.metrics == {"auto": 1.0}


def test_bad_input_raises_immediately_and_keeps_data(tracking: str, logging_mode: str) -> None:
    with cairn.start_run() as run:
        cairn.log_param("alpha", 0.5)
        with pytest.raises(InvalidParameterError, match=r"Param 'alpha' .* cannot be changed"):
            cairn.log_param("alpha", 0.9)
        cairn.flush()
        with pytest.raises(InvalidParameterError, match="Metric 'mae' must be a number"):
            cairn.log_metric("mae", "0.3")
        with pytest.raises(InvalidParameterError, match="Invalid metric name 'bad\\*key'"):
            cairn.log_metric("bad*key", 1.0)
        with pytest.raises(InvalidParameterError, match="limit is 250"):
            cairn.log_param("k" * 251, 1)
        with pytest.raises(InvalidParameterError, match=r"names may not start with '/' or contain"):
            cairn.set_tag("../escape", 1)
    assert cairn.get_run(run.info.run_id).data.params == {"alpha": "0.5"}


def test_background_error_is_raised_at_flush(
    tracking: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_ASYNC_LOGGING", "true")
    with cairn.start_run() as run:
        cairn.log_metric("m", 1.0)
        cairn.flush()
    client = cairn.TrackingClient()
    client.create_run("0")  # unrelated run stays untouched
    # A value queued for a run that was finished behind the logger's back fails in the
    # background; the error must surface at the next flush, not vanish.
    with cairn.start_run() as other:
        pass
    from cairn.tracking import fluent
    from cairn.tracking.client import make_metric

    fluent._get_logger().submit(other.info.run_id, make_metric("late", 1.0))
    with pytest.raises(InvalidStateError, match="is FINISHED"):
        cairn.flush()
    cairn.flush()  # reported once
    assert cairn.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_nan_metric_round_trips(tracking: str) -> None:
    with cairn.start_run() as run:
        cairn.log_metric("loss", float("nan"))
    assert math.isnan(cairn.get_run(run.info.run_id).data.metrics["loss"])


def test_search_runs_entities_and_pandas(tracking: str) -> None:
    cairn.set_experiment("search")
    for alpha in (0.1, 0.5, 0.9):
        with cairn.start_run(run_name=f"a{alpha}"):
            cairn.log_param("alpha", alpha)
            cairn.log_metric("mae", alpha / 2)
    runs = cairn.search_runs(filter_string="metrics.mae < 0.3", order_by=["metrics.mae DESC"])
    assert [r.info.run_name for r in runs] == ["a0.5", "a0.1"]
    frame = cairn.search_runs(
        experiment_names=["search"], filter_string="params.alpha = '0.9'", output_format="pandas"
    )
    assert list(frame["params.alpha"]) == ["0.9"]
    assert frame["metrics.mae"].iloc[0] == pytest.approx(0.45)
    with pytest.raises(NotFoundError, match="Experiment 'nope' does not exist"):
        cairn.search_runs(experiment_names=["nope"])


def test_system_tags_and_packages_artifact(tracking: str, tmp_path: Path) -> None:
    with cairn.start_run() as run:
        pass
    tags = cairn.get_run(run.info.run_id).data.tags
    assert tags["cairn.python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert {"mlflow.user", "cairn.platform", "cairn.host"} <= tags.keys()
    packages = Path(
        cairn.download_artifacts(PACKAGES_ARTIFACT, run_id=run.info.run_id, dst_path=tmp_path)
    )
    assert "SQLAlchemy==" in packages.read_text()


def test_artifacts_through_fluent_api(tracking: str, tmp_path: Path) -> None:
    source = tmp_path / "model.txt"
    source.write_text("weights")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.csv").write_text("x\n1\n")
    with cairn.start_run() as run:
        cairn.log_artifact(source)
        cairn.log_artifact(source, artifact_path="models")
        cairn.log_artifacts(folder, artifact_path="plots")
        cairn.log_text("hello", "notes/readme.txt")
        cairn.log_dict({"a": 1}, "config.json")
        cairn.log_dict({"a": 1}, "config.yaml")
        assert cairn.get_artifact_uri("models").endswith("/artifacts/models")
    paths = {f.path for f in cairn.list_artifacts(run_id=run.info.run_id)}
    assert {"model.txt", "models", "plots", "notes", "config.json", "config.yaml"} <= paths
    out = Path(cairn.download_artifacts("plots", run_id=run.info.run_id, dst_path=tmp_path / "dl"))
    assert (out / "sub" / "a.csv").read_text() == "x\n1\n"
    with cairn.start_run(run_id=run.info.run_id), pytest.raises(Exception, match=r"\.\."):
        cairn.log_artifact(source, artifact_path="../../etc")


def test_log_figure(tracking: str, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    with cairn.start_run() as run:
        cairn.log_figure(figure, "curve.png")
    plt.close(figure)
    local = Path(cairn.download_artifacts("curve.png", run_id=run.info.run_id, dst_path=tmp_path))
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(body))
    # No CAIRN_TRACKING_URI: the script must use the default store, .cairn/ in its cwd.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_interpreter_exit_drains_and_ends_run(tmp_path: Path) -> None:
    result = _run_script(
        tmp_path,
        """
        import cairn
        cairn.start_run(run_name="exit")
        for i in range(500):
            cairn.log_metric("m", i, step=i)
        """,
    )
    assert result.returncode == 0, result.stderr
    client = cairn.TrackingClient(str(tmp_path / ".cairn"))
    (run,) = client.search_runs(["0"])
    assert run.info.status is RunStatus.FINISHED
    assert len(client.get_metric_history(run.info.run_id, "m")) == 500
    assert run.data.tags["mlflow.source.name"] == str(tmp_path / "train.py")


def test_uncaught_exception_marks_run_failed(tmp_path: Path) -> None:
    result = _run_script(
        tmp_path,
        """
        import cairn
        cairn.start_run()
        cairn.log_metric("m", 1.0)
        raise RuntimeError("crash")
        """,
    )
    assert result.returncode == 1 and "RuntimeError: crash" in result.stderr
    (run,) = cairn.TrackingClient(str(tmp_path / ".cairn")).search_runs(["0"])
    assert run.info.status is RunStatus.FAILED
    assert run.data.metrics == {"m": 1.0}


def test_managed_run_is_left_running_at_interpreter_exit(tmp_path: Path) -> None:
    client = cairn.TrackingClient(str(tmp_path / ".cairn"))
    run_id = client.create_run("0").info.run_id
    script = tmp_path / "train.py"
    script.write_text("import cairn\ncairn.log_metric('m', 1.0)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update({"CAIRN_RUN_ID": run_id, "CAIRN_RUN_MANAGED": "true"})
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    stored = client.get_run(run_id)
    assert stored.info.status is RunStatus.RUNNING and stored.data.metrics == {"m": 1.0}

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.entities import RunStatus
from cairn.errors import (
    InvalidStateError,
    NotFoundError,
    ProjectExecutionError,
    ProjectSpecError,
)
from cairn.projects import reproduce, run

Writer = Callable[[Path, dict[str, str]], Path]
Git = Callable[..., str]

# Run as `python sleepy.py --pids FILE`: starts a grandchild, writes both pids, then waits.
SLEEPY_PY = """\
import os, subprocess, sys, time
path = sys.argv[2]
child = subprocess.Popen(["sleep", "300"])
with open(path + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.rename(path + ".tmp", path)
time.sleep(300)
"""


def _artifact(run_id: str, path: str) -> str:
    local = cairn.download_artifacts(path, run_id=run_id)
    return Path(local).read_text()


def _all_runs() -> list[cairn.entities.Run]:
    client = cairn.TrackingClient()
    ids = [e.experiment_id for e in client.search_experiments(view_type="ALL")]
    return list(client.search_runs(ids, run_view_type="ALL"))


def test_run_records_source_params_command_output_and_child_metrics(
    store: str, project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run(
        str(project),
        "main",
        {"label": "1; rm -rf ~"},
        env_manager="local",
        experiment_name="projects",
        run_name="first",
    )
    assert result.status is RunStatus.FINISHED and result.exit_code == 0
    stored = cairn.get_run(result.run_id)
    assert stored.info.run_name == "first"
    assert cairn.get_experiment(stored.info.experiment_id).name == "projects"
    assert stored.data.params == {"alpha": "0.1", "label": "1; rm -rf ~"}
    assert stored.data.metrics == {"score": 0.2}  # logged by the child into this same run
    tags = stored.data.tags
    assert tags["mlflow.source.name"] == str(project)
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags["mlflow.project.backend"] == "local"
    assert tags["cairn.project.command"] == "python train.py --alpha 0.1 --label '1; rm -rf ~'"
    assert tags["cairn.project.python"] == ".".join(map(str, sys.version_info[:3]))
    assert tags["cairn.project.exit_code"] == "0"
    assert "mlflow.source.git.commit" not in tags
    assert "training alpha=0.1 label='1; rm -rf ~'" in _artifact(result.run_id, "logs/stdout.txt")
    assert "pyyaml==" in _artifact(result.run_id, "environment/packages.txt").lower()
    invocation = json.loads(_artifact(result.run_id, "project/invocation.json"))
    assert invocation["parameters"] == {"label": "1; rm -rf ~"}
    assert invocation["uri"] == str(project)
    assert [r.info.run_id for r in _all_runs()] == [result.run_id]  # the child made no run
    assert "training alpha=0.1" in capfd.readouterr().out  # shown live on the console


def test_run_and_reproduce_against_a_tracking_server(
    live_server: Any, project: Path, tmp_path: Path
) -> None:
    result = run(
        str(project),
        parameters={"label": "remote"},
        env_manager="local",
        tracking_uri=live_server.url,
        echo=False,
    )
    assert result.succeeded, result.reason
    client = cairn.TrackingClient(live_server.url)
    stored = client.get_run(result.run_id)
    assert stored.data.metrics == {"score": 0.2}  # the child logged over HTTP into the run
    assert stored.data.params == {"alpha": "0.1", "label": "remote"}
    logs = client.download_artifacts(result.run_id, "logs/stdout.txt", tmp_path)
    assert Path(logs).read_text() == "training alpha=0.1 label='remote'\n"
    again = reproduce(result.run_id, {"alpha": 2}, tracking_uri=live_server.url, echo=False)
    assert client.get_run(again.run_id).data.metrics == {"score": 4.0}


def test_git_source_records_commit_and_version(store: str, repo: Path, git: Git) -> None:
    git(repo, "tag", "v1")
    result = run(f"file://{repo}", parameters={"label": "x"}, version="v1", env_manager="local")
    tags = cairn.get_run(result.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["cairn.source.git.dirty"] == "false"
    assert tags["cairn.source.git.version"] == "v1"
    assert tags["mlflow.source.git.repoURL"] == f"file://{repo}"
    (repo / "train.py").write_text((repo / "train.py").read_text() + "\n# edited\n")
    dirty = run(str(repo), parameters={"label": "y"}, env_manager="local", echo=False)
    assert cairn.get_run(dirty.run_id).data.tags["cairn.source.git.dirty"] == "true"


def test_failing_command_marks_run_failed_with_reason(store: str, project: Path) -> None:
    result = run(str(project), "fail", {"code": 4}, env_manager="local", echo=False)
    assert (result.status, result.exit_code) == (RunStatus.FAILED, 4)
    assert result.reason == "The command exited with status 4"
    stored = cairn.get_run(result.run_id)
    assert stored.info.status is RunStatus.FAILED and stored.info.end_time is not None
    assert stored.data.tags["cairn.failure_reason"] == "The command exited with status 4"
    assert stored.data.tags["cairn.project.exit_code"] == "4"
    assert _artifact(result.run_id, "logs/stderr.txt") == "failing\n"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"entry_point": "nope"}, ProjectSpecError, "Unknown entry point 'nope'"),
        ({"parameters": {}}, ProjectSpecError, r"needs parameter 'label' \(string\)"),
        ({"parameters": {"label": "x", "alpha": "high"}}, ProjectSpecError, "must be a float"),
        ({"version": "v9"}, ProjectSpecError, "--version needs a git repository"),
        ({"backend": "mesos"}, ProjectSpecError, "Unknown backend 'mesos'"),
        (
            {"backend": "spark", "backend_config": {"num_tasks": 0}},
            ProjectSpecError,
            "num_tasks` must be a positive integer",
        ),
        ({"env_manager": "uv"}, ProjectSpecError, "declares no python_env.yaml for uv"),
        ({"env_manager": "conda"}, ProjectSpecError, "Unknown environment manager 'conda'"),
        ({"experiment_id": "42"}, NotFoundError, "Experiment '42' does not exist"),
    ],
)
def test_bad_input_fails_before_any_run_exists(
    store: str, project: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    kwargs = {"parameters": {"label": "x"}, **kwargs}
    with pytest.raises(error, match=message):
        run(str(project), **kwargs)  # type: ignore[arg-type]
    assert _all_runs() == []


def test_yaml_error_and_missing_git_ref_leave_no_run(
    store: str, repo: Path, write_project: Writer
) -> None:
    with pytest.raises(NotFoundError, match="Git ref 'nope' does not exist"):
        run(f"file://{repo}", parameters={"label": "x"}, version="nope")
    (repo / "MLproject").write_text("entry_points:\n  main: [\n")
    with pytest.raises(ProjectSpecError, match=r"MLproject, line 3, column 1: not valid YAML"):
        run(str(repo), parameters={"label": "x"})
    assert _all_runs() == []


def test_unbuildable_environment_marks_the_run_failed(
    store: str, tmp_path: Path, write_project: Writer
) -> None:
    folder = write_project(
        tmp_path / "broken",
        {
            "MLproject": "python_env: python_env.yaml\nentry_points:\n  main: {command: 'true'}\n",
            "python_env.yaml": "python: '3.11'\ndependencies: ['not a valid requirement ===']\n",
        },
    )
    with pytest.raises(ProjectExecutionError, match=r"Run \w+ failed: Could not build the env"):
        run(str(folder), echo=False)
    (failed,) = _all_runs()
    assert failed.info.status is RunStatus.FAILED
    reason = failed.data.tags["cairn.failure_reason"]
    assert reason.startswith("Could not build the environment: installing dependencies failed")
    assert failed.data.tags["mlflow.project.env"] == "uv"


def test_uv_environment_is_built_once_then_reused_and_reproduced(
    store: str,
    tmp_path: Path,
    write_project: Writer,
    capfd: pytest.CaptureFixture[str],
    _private_cache: Path,
) -> None:
    python = "{}.{}".format(*sys.version_info[:2])
    folder = write_project(
        tmp_path / "uvproject",
        {
            "MLproject": """\
                python_env: python_env.yaml
                entry_points:
                  main:
                    parameters: {n: {type: int, default: 1}}
                    command: python check.py {n}
            """,
            "python_env.yaml": f"python: '{python}'\ndependencies: [pyyaml]\n",
            "check.py": """\
                import importlib.util, sys
                import yaml
                import cairn
                print("interpreter", sys.executable)
                print("isolated", importlib.util.find_spec("sklearn") is None)
                cairn.log_metric("n", float(sys.argv[1]))
            """,
        },
    )
    first = run(str(folder), echo=True)
    second = run(str(folder), "main", {"n": 2}, echo=True)
    err = capfd.readouterr().err
    assert err.count("Building environment") == 1
    assert first.succeeded and second.succeeded
    runs = [cairn.get_run(r.run_id) for r in (first, second)]
    env_hash = runs[0].data.tags["cairn.project.env_hash"]
    assert runs[1].data.tags["cairn.project.env_hash"] == env_hash
    env_dir = _private_cache / "envs" / env_hash
    for stored in runs:
        out = _artifact(stored.info.run_id, "logs/stdout.txt")
        assert f"interpreter {env_dir}/bin/python" in out
        assert "isolated True" in out
    assert [r.data.metrics["n"] for r in runs] == [1.0, 2.0]
    packages = _artifact(first.run_id, "environment/packages.txt")
    assert "pyyaml==" in packages.lower() and "scikit-learn" not in packages

    # Reproducing uses the cached environment while it exists ...
    again = reproduce(second.run_id, echo=False)
    assert again.succeeded
    stored = cairn.get_run(again.run_id)
    assert stored.data.tags["cairn.project.env_hash"] == env_hash
    assert stored.data.tags["cairn.project.reproduces"] == second.run_id
    assert stored.data.metrics == {"n": 2.0}
    # ... and rebuilds exactly the recorded package versions once it is gone.
    import shutil

    shutil.rmtree(env_dir)
    rebuilt = reproduce(first.run_id, echo=False)
    assert rebuilt.succeeded
    stored = cairn.get_run(rebuilt.run_id)
    assert stored.data.tags["cairn.project.env_hash"] != env_hash
    assert _artifact(rebuilt.run_id, "environment/packages.txt") == packages


def test_reproduce_reruns_the_recorded_commit_with_overrides(
    store: str, repo: Path, git: Git
) -> None:
    original = run(
        f"file://{repo}", parameters={"label": "a", "alpha": 0.3}, env_manager="local", echo=False
    )
    commit = git(repo, "rev-parse", "HEAD")
    train = repo / "train.py"
    train.write_text(train.read_text().replace("args.alpha * 2", "args.alpha * 3"))
    git(repo, "commit", "--quiet", "-am", "new scoring")
    result = reproduce(original.run_id, {"alpha": "0.5"}, run_name="again", echo=False)
    assert result.succeeded and result.run_id != original.run_id
    stored = cairn.get_run(result.run_id)
    assert stored.info.run_name == "again"
    assert stored.info.experiment_id == cairn.get_run(original.run_id).info.experiment_id
    assert stored.data.tags["cairn.project.reproduces"] == original.run_id
    assert stored.data.tags["mlflow.source.git.commit"] == commit
    assert stored.data.params == {"alpha": "0.5", "label": "a"}
    assert stored.data.metrics == {"score": 1.0}  # the recorded code (x2), not the new (x3)


def test_reproduce_needs_a_project_run(store: str) -> None:
    with cairn.start_run() as plain:
        pass
    with pytest.raises(InvalidStateError, match="was not started by `cairn run`"):
        reproduce(plain.info.run_id)
    with pytest.raises(NotFoundError, match="Run 'missing' does not exist"):
        reproduce("missing")


def _start_sleepy(tmp_path: Path, project: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    (project / "sleepy.py").write_text(SLEEPY_PY)
    pids = tmp_path / "pids"
    cairn_cli = Path(sys.executable).parent / "cairn"
    proc = subprocess.Popen(
        [str(cairn_cli), "run", str(project), "-e", "sleepy.py", "-P", f"pids={pids}"],
        env={**os.environ, "CAIRN_TRACKING_URI": str(tmp_path / "store")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not pids.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"project did not start: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        time.sleep(0.05)
    return proc, [int(p) for p in pids.read_text().split()]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def _wait_gone(pids: list[int], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not all(_gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_kills_the_process_tree_and_marks_run_killed(
    tmp_path: Path, project: Path, sig: signal.Signals
) -> None:
    proc, pids = _start_sleepy(tmp_path, project)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert _wait_gone(pids), f"left running: {[p for p in pids if not _gone(p)]}"
    cairn.set_tracking_uri(str(tmp_path / "store"))
    (killed,) = _all_runs()
    assert killed.info.status is RunStatus.KILLED
    assert killed.data.tags["cairn.failure_reason"] == f"Stopped by {sig.name}"
    assert f"Error: Run {killed.info.run_id} KILLED: Stopped by {sig.name}" in err.decode()


def test_runner_killed_outright_still_takes_its_command_down(tmp_path: Path, project: Path) -> None:
    proc, pids = _start_sleepy(tmp_path, project)
    proc.kill()  # no handler runs: the watchdog notices the runner is gone
    proc.communicate(timeout=30)
    assert _wait_gone(pids), f"left running: {[p for p in pids if not _gone(p)]}"

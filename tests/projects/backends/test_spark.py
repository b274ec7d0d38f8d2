"""The Spark backend on a real local-mode session (the shared ``spark`` fixture, local[2])."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import cairn
from cairn.entities import RunStatus
from cairn.errors import ProjectExecutionError, ProjectSpecError
from cairn.projects import run
from cairn.projects.backends import get_backend, load_backend_config
from cairn.projects.backends.spark import SparkConfig

if TYPE_CHECKING:
    from collections.abc import Callable

# An all-reduce (sum) over TCP through MASTER_ADDR:MASTER_PORT: rank 0 gathers every rank's
# value and sends the total back. It only completes if all ranks run at the same time.
ALLREDUCE_PY = """\
import json, os, socket, sys, time
import cairn

rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
value = 10.0 * (rank + 1)

def send(sock, obj):
    sock.sendall(json.dumps(obj).encode() + b"\\n")

if rank == 0:
    server = socket.create_server(("", port))
    server.settimeout(60)
    peers = [server.accept()[0] for _ in range(world - 1)]
    total = value + sum(json.loads(p.makefile().readline()) for p in peers)
    for peer in peers:
        send(peer, total)
else:
    deadline = time.monotonic() + 60
    while True:
        try:
            sock = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    send(sock, value)
    total = json.loads(sock.makefile().readline())

print(f"rank {rank} of {world} (local {os.environ['LOCAL_RANK']}): sum = {total}")
cairn.log_param("world_size", world)
cairn.log_param("logged_by_rank", rank)  # rank 0 owns params: other ranks' values are dropped
cairn.log_metric("allreduce_sum", total)
cairn.log_metric("local_value", value)
"""

# Rank 1 fails once rank 0 is up; rank 0 would wait five minutes unless the gang is stopped.
FAIL_PY = """\
import os, sys, time
path = sys.argv[2]
if os.environ["RANK"] == "1":
    while not os.path.exists(path):
        time.sleep(0.05)
    sys.exit(3)
with open(path + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(path + ".tmp", path)
time.sleep(300)
"""

MLPROJECT = """\
entry_points:
  main:
    parameters: {epochs: {type: int, default: 2}}
    command: python allreduce.py --epochs {epochs}
"""


def _artifact(run_id: str, path: str) -> str:
    return Path(cairn.download_artifacts(path, run_id=run_id)).read_text()


def test_config_is_validated_before_any_run(tmp_path: Path) -> None:
    config = tmp_path / "spark.json"
    config.write_text(json.dumps({"master": "local[2]", "num_tasks": 2}))
    assert load_backend_config(str(config)) == {"master": "local[2]", "num_tasks": 2}
    assert load_backend_config('{"num_tasks": 3}') == {"num_tasks": 3}
    backend = get_backend("spark", {"num_tasks": 3, "spark_conf": {"spark.task.cpus": 1}})
    assert backend.config_record() == {
        "master": None,
        "num_tasks": 3,
        "spark_conf": {"spark.task.cpus": "1"},
        "app_name": "cairn-project",
    }
    cases: list[tuple[Any, str]] = [
        ({"tasks": 2}, r"Unknown Spark backend setting\(s\) tasks"),
        ({"num_tasks": "2"}, "must be a positive integer, got '2'"),
        ({"master": ""}, "`master` must be a master URL"),
        ({"spark_conf": ["a"]}, "`spark_conf` must map setting names to values"),
    ]
    for data, message in cases:
        with pytest.raises(ProjectSpecError, match=message):
            SparkConfig.from_mapping(data)
    with pytest.raises(ProjectSpecError, match=r"Cannot read backend config .*absent\.json"):
        load_backend_config(str(tmp_path / "absent.json"))
    config.write_text("{not json")
    with pytest.raises(ProjectSpecError, match="is not valid JSON"):
        load_backend_config(str(config))
    with pytest.raises(ProjectSpecError, match="The local backend takes no --backend-config"):
        get_backend("local", {"num_tasks": 2})


@pytest.mark.slow
def test_two_ranks_rendezvous_and_log_into_one_run(
    spark: Any, store: str, tmp_path: Path, write_project: Callable[[Path, dict[str, str]], Path]
) -> None:
    folder = write_project(
        tmp_path / "dist", {"MLproject": MLPROJECT, "allreduce.py": ALLREDUCE_PY}
    )
    result = run(
        str(folder),
        parameters={"epochs": 5},
        env_manager="local",
        backend="spark",
        backend_config={"num_tasks": 2},
        echo=False,
    )
    assert result.status is RunStatus.FINISHED, result.reason
    stored = cairn.get_run(result.run_id)
    assert stored.data.metrics == {
        "allreduce_sum": 30.0,
        "allreduce_sum/rank1": 30.0,  # both ranks saw the total: data went both ways
        "local_value": 10.0,
        "local_value/rank1": 20.0,
    }
    assert stored.data.params == {"epochs": "5", "world_size": "2", "logged_by_rank": "0"}
    assert stored.data.tags["mlflow.project.backend"] == "spark"
    for rank in (0, 1):
        out = _artifact(result.run_id, f"logs/rank-{rank}/stdout.txt")
        assert out == f"rank {rank} of 2 (local {rank}): sum = 30.0\n"
    invocation = json.loads(_artifact(result.run_id, "project/invocation.json"))
    assert invocation["backend"] == "spark" and invocation["backend_config"]["num_tasks"] == 2


@pytest.mark.slow
def test_a_failing_rank_fails_the_run_and_stops_the_gang(
    spark: Any, store: str, tmp_path: Path, write_project: Callable[[Path, dict[str, str]], Path]
) -> None:
    folder = write_project(tmp_path / "dist", {"fail.py": FAIL_PY})
    pid_file = tmp_path / "rank0.pid"
    result = run(
        str(folder),
        "fail.py",
        {"pid": str(pid_file)},
        env_manager="local",
        backend="spark",
        backend_config={"num_tasks": 2},
        echo=False,
    )
    assert result.status is RunStatus.FAILED
    assert result.reason == "Spark task rank 1 exited with status 3"
    assert result.exit_code == 3
    stored = cairn.get_run(result.run_id)
    assert stored.data.tags["cairn.failure_reason"] == "Spark task rank 1 exited with status 3"
    pid = int(pid_file.read_text())  # rank 0's command must not outlive the stage
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.slow
def test_more_tasks_than_slots_is_refused(
    spark: Any, store: str, tmp_path: Path, write_project: Callable[[Path, dict[str, str]], Path]
) -> None:
    folder = write_project(tmp_path / "dist", {"MLproject": MLPROJECT, "allreduce.py": ""})
    with pytest.raises(ProjectExecutionError, match="barrier stage of 3 tasks needs 3 task slots"):
        run(str(folder), env_manager="local", backend="spark", backend_config={"num_tasks": 3})
    (failed,) = cairn.search_runs(experiment_ids=["0"])
    assert failed.info.status is RunStatus.FAILED

"""The Spark backend: the entry point as N tasks of one barrier stage, gang-scheduled.

A barrier stage starts all its tasks together or none, and fails them together. Each task
runs the command with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` set (rank 0's host and a free port it picked, shared through the barrier), so
a framework's distributed mode (PyTorch's gloo, Horovod, ...) can rendezvous. Every rank logs
into the run; each uploads its output under ``logs/rank-N/``.

``--backend-config spark.json``::

    {"master": "local[2]", "num_tasks": 2, "spark_conf": {"spark.task.cpus": "1"}}

With no ``master``, the active SparkSession is used (or ``spark-submit``'s). The project folder
and its environment must be at the same path on the executors: local mode, or a shared
filesystem. pyspark is imported here only, when a run uses this backend.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.entities import RunStatus
from cairn.errors import ProjectExecutionError, ProjectSpecError
from cairn.projects._process import CommandProcess, stop_on_signals
from cairn.projects.backends import Launch, Outcome
from cairn.projects.record import LOGS_DIR

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from cairn.tracking.client import TrackingClient

__all__ = ["SparkBackend", "SparkConfig"]

_KEYS = ("master", "num_tasks", "spark_conf", "app_name")
_RANK_FAILED = "cairn-rank-failed:"
_RANK_FAILURE = re.compile(re.escape(_RANK_FAILED) + r" (rank (\d+) exited with status (-?\d+))")


@dataclass(frozen=True, slots=True)
class SparkConfig:
    """``--backend-config`` of the Spark backend, validated before any run exists."""

    master: str | None = None
    num_tasks: int = 2
    spark_conf: dict[str, str] = field(default_factory=dict)
    app_name: str = "cairn-project"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SparkConfig:
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ProjectSpecError(
                f"Unknown Spark backend setting(s) {', '.join(unknown)}; "
                f"expected {', '.join(_KEYS)}"
            )
        master = data.get("master")
        if master is not None and (not isinstance(master, str) or not master.strip()):
            raise ProjectSpecError("Spark backend: `master` must be a master URL such as local[2]")
        tasks = data.get("num_tasks", 2)
        if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1:
            raise ProjectSpecError(
                f"Spark backend: `num_tasks` must be a positive integer, got {tasks!r}"
            )
        conf = data.get("spark_conf", {})
        if not isinstance(conf, dict) or not all(isinstance(k, str) for k in conf):
            raise ProjectSpecError("Spark backend: `spark_conf` must map setting names to values")
        app = data.get("app_name", "cairn-project")
        if not isinstance(app, str):
            raise ProjectSpecError("Spark backend: `app_name` must be a string")
        return cls(master, tasks, {k: str(v) for k, v in conf.items()}, app)


@dataclass(frozen=True, slots=True)
class _TaskSpec:
    """What every task gets (pickled to the executors)."""

    command: str
    cwd: str
    env: dict[str, str]
    tracking_uri: str
    run_id: str
    echo: bool


class SparkBackend:
    name = "spark"

    def __init__(self, config: SparkConfig) -> None:
        self.config = config

    def config_record(self) -> dict[str, Any] | None:
        return {
            "master": self.config.master,
            "num_tasks": self.config.num_tasks,
            "spark_conf": self.config.spark_conf,
            "app_name": self.config.app_name,
        }

    def _session(self) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ProjectExecutionError(
                "The Spark backend needs pyspark: pip install 'cairn-ml[spark]'"
            ) from exc
        active = SparkSession.getActiveSession()
        wanted = self.config.master
        if active is not None and wanted in (None, active.sparkContext.master):
            return active
        # Python workers must import Cairn: run them on this interpreter unless told otherwise.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.appName(self.config.app_name)
        if wanted is not None:
            builder = builder.master(wanted)
        for key, value in self.config.spark_conf.items():
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()
        except Exception as exc:
            raise ProjectExecutionError(
                f"Could not start Spark ({wanted or 'default master'}): {exc}"
            ) from exc

    def execute(self, launch: Launch, client: TrackingClient) -> Outcome:
        if launch.docker is not None:
            raise ProjectSpecError("docker_env projects run with the local backend only")
        spark = self._session()
        context = spark.sparkContext
        tasks = self.config.num_tasks
        cpus = int(context.getConf().get("spark.task.cpus", "1"))
        slots = context.defaultParallelism // max(cpus, 1)
        if tasks > slots:
            raise ProjectExecutionError(
                f"A barrier stage of {tasks} tasks needs {tasks} task slots at once, and "
                f"Spark ({context.master}) has {slots}: lower num_tasks or add executors"
            )
        spec = _TaskSpec(
            launch.command,
            str(launch.project_dir),
            dict(launch.env),
            launch.tracking_uri,
            launch.run_id,
            launch.echo,
        )
        group = f"cairn-run-{launch.run_id}"
        stopped: list[str] = []

        def stop(reason: str) -> None:
            stopped.append(reason)
            # Not from the signal handler itself: it may interrupt a py4j call in flight.
            threading.Thread(target=context.cancelJobGroup, args=(group,), daemon=True).start()

        context.setJobGroup(group, f"cairn run {launch.run_id}", interruptOnCancel=True)
        try:
            with stop_on_signals(stop):
                rdd = context.parallelize(range(tasks), tasks).barrier()
                rdd.mapPartitions(functools.partial(_run_rank, spec)).collect()
        except Exception as exc:
            if stopped:
                return Outcome(RunStatus.KILLED, None, f"Stopped by {stopped[0]}")
            return _failure(exc)
        finally:
            context.setLocalProperty("spark.jobGroup.id", None)
        if stopped:
            return Outcome(RunStatus.KILLED, None, f"Stopped by {stopped[0]}")
        return Outcome(RunStatus.FINISHED, 0)


def _failure(exc: Exception) -> Outcome:
    text = str(exc)
    match = _RANK_FAILURE.search(text)
    if match is not None:
        return Outcome(RunStatus.FAILED, int(match.group(3)), f"Spark task {match.group(1)}")
    first = next((line.strip() for line in text.splitlines() if line.strip()), repr(exc))
    return Outcome(RunStatus.FAILED, None, f"The Spark job failed: {first[:2000]}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _run_rank(spec: _TaskSpec, _partition: Iterable[int]) -> Iterator[int]:
    """One task of the barrier stage: agree on a master, run the command as this rank."""
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    rank = context.partitionId()
    host = context.getTaskInfos()[rank].address.rsplit(":", 1)[0]
    port = _free_port() if rank == 0 else 0
    peers = [json.loads(m) for m in context.allGather(json.dumps([rank, host, port]))]
    peers.sort()
    env = {
        **spec.env,
        "RANK": str(rank),
        "WORLD_SIZE": str(len(peers)),
        "LOCAL_RANK": str(sum(1 for r, h, _ in peers if h == host and r < rank)),
        "MASTER_ADDR": peers[0][1],
        "MASTER_PORT": str(peers[0][2]),
    }
    with tempfile.TemporaryDirectory(prefix=f"cairn-rank{rank}-") as logs:
        process = CommandProcess(
            ["bash", "-c", spec.command],
            cwd=Path(spec.cwd),
            env=env,
            log_dir=Path(logs),
            echo=spec.echo,
        )
        process.start()
        returncode = process.wait()
        from cairn.tracking.client import TrackingClient

        TrackingClient(spec.tracking_uri).log_artifacts(
            spec.run_id, logs, f"{LOGS_DIR}/rank-{rank}"
        )
    if returncode != 0:
        # Failing the task fails the stage: Spark stops the other ranks (a gang ends together).
        raise RuntimeError(f"{_RANK_FAILED} rank {rank} exited with status {returncode}")
    yield rank

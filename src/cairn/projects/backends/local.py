"""The local backend: the command runs here, as a supervised process tree."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.entities import RunStatus
from cairn.projects._process import CommandProcess, stop_on_signals
from cairn.projects.backends import Launch, Outcome
from cairn.projects.record import LOGS_DIR

if TYPE_CHECKING:
    from cairn.tracking.client import TrackingClient

__all__ = ["LocalBackend", "command_argv", "outcome_of"]


def command_argv(launch: Launch) -> list[str]:
    """``bash -c COMMAND``, or ``docker run ... sh -c COMMAND`` for a docker_env project."""
    if launch.docker is None:
        return ["bash", "-c", launch.command]
    from cairn.projects.docker import docker_argv

    return docker_argv(
        launch.docker, launch.command, launch.project_dir, launch.env, launch.tracking_uri
    )


def outcome_of(returncode: int, stopped_by: str | None) -> Outcome:
    """The run status for how a command ended."""
    if stopped_by is not None:
        return Outcome(RunStatus.KILLED, returncode, f"Stopped by {stopped_by}")
    if returncode == 0:
        return Outcome(RunStatus.FINISHED, 0)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return Outcome(RunStatus.FAILED, returncode, f"The command was killed by {name}")
    return Outcome(RunStatus.FAILED, returncode, f"The command exited with status {returncode}")


class LocalBackend:
    name = "local"

    def config_record(self) -> dict[str, Any] | None:
        return None

    def execute(self, launch: Launch, client: TrackingClient) -> Outcome:
        with tempfile.TemporaryDirectory(prefix="cairn-logs-") as logs:
            process = CommandProcess(
                command_argv(launch),
                cwd=launch.project_dir,
                env=launch.env,
                log_dir=Path(logs),
                echo=launch.echo,
            )
            try:
                with stop_on_signals(process.stop):
                    process.start()
                    returncode = process.wait()
            except OSError as exc:
                return Outcome(RunStatus.FAILED, None, f"Could not start the command: {exc}")
            finally:
                if any(Path(logs).iterdir()):
                    client.log_artifacts(launch.run_id, logs, LOGS_DIR)
            return outcome_of(returncode, process.stopped_by)

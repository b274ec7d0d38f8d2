"""Where a project's command runs: here (``local``) or as a gang of Spark tasks (``spark``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cairn.errors import ProjectSpecError

if TYPE_CHECKING:
    from cairn.entities import RunStatus
    from cairn.projects.environments import Environment
    from cairn.projects.spec import DockerEnv
    from cairn.tracking.client import TrackingClient

__all__ = ["BACKENDS", "Backend", "Launch", "Outcome", "get_backend", "load_backend_config"]

BACKENDS = ("local", "spark")


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything a backend needs to start the command of one run."""

    run_id: str
    command: str
    project_dir: Path
    environment: Environment
    env: Mapping[str, str]  # the command's environment variables
    tracking_uri: str  # absolute, as the command sees it
    docker: DockerEnv | None = None
    echo: bool = True


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the command ended, as the run's final status says it."""

    status: RunStatus
    exit_code: int | None = None
    reason: str | None = None


class Backend(Protocol):
    name: str

    def config_record(self) -> dict[str, Any] | None:
        """The configuration to record with the run, so a reproduction runs the same way."""
        ...

    def execute(self, launch: Launch, client: TrackingClient) -> Outcome:
        """Run the command to the end (or until stopped) and say how it ended."""
        ...


def load_backend_config(value: str | Path | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A backend config from a mapping, a JSON file, or inline JSON text."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value)
    path = Path(text).expanduser()
    source = "inline JSON"
    if not text.lstrip().startswith("{"):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProjectSpecError(
                f"Cannot read backend config {path}: {exc.strerror or exc}"
            ) from exc
        source = str(path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProjectSpecError(f"Backend config ({source}) is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProjectSpecError(f"Backend config ({source}) must be a JSON object")
    return data


def get_backend(name: str, config: Mapping[str, Any] | None = None) -> Backend:
    """The backend called ``name``, its configuration validated now (before any run exists)."""
    if name == "local":
        if config:
            raise ProjectSpecError("The local backend takes no --backend-config")
        from cairn.projects.backends.local import LocalBackend

        return LocalBackend()
    if name == "spark":
        from cairn.projects.backends.spark import SparkBackend, SparkConfig

        return SparkBackend(SparkConfig.from_mapping(config or {}))
    raise ProjectSpecError(f"Unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")

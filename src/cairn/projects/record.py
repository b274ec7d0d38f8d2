"""What a project run records, so it can be searched, compared and reproduced.

Tags (MLflow's names where MLflow has one) say where the code came from and how it ran;
``project/invocation.json`` keeps everything ``cairn runs reproduce`` needs, exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.errors import InvalidStateError

if TYPE_CHECKING:
    from cairn.projects.environments import Environment
    from cairn.projects.sources import ProjectSource

__all__ = [
    "INVOCATION_ARTIFACT",
    "TAG_FAILURE_REASON",
    "TAG_REPRODUCES",
    "Invocation",
    "environment_tags",
    "failure_tags",
    "run_tags",
]

INVOCATION_ARTIFACT = "project/invocation.json"
ENVIRONMENT_SPEC_ARTIFACT = "environment/python_env.json"
PACKAGES_ARTIFACT = "environment/packages.txt"
LOGS_DIR = "logs"

TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_REPO_URL = "mlflow.source.git.repoURL"
TAG_GIT_DIRTY = "cairn.source.git.dirty"
TAG_GIT_VERSION = "cairn.source.git.version"
TAG_ENTRY_POINT = "mlflow.project.entryPoint"
TAG_ENV = "mlflow.project.env"
TAG_BACKEND = "mlflow.project.backend"
TAG_COMMAND = "cairn.project.command"
TAG_ENV_HASH = "cairn.project.env_hash"
TAG_PYTHON = "cairn.project.python"
TAG_DOCKER_IMAGE = "mlflow.docker.image.name"
TAG_REPRODUCES = "cairn.project.reproduces"
TAG_EXIT_CODE = "cairn.project.exit_code"
TAG_FAILURE_REASON = "cairn.failure_reason"
MAX_TAG_CHARS = 8000


@dataclass(frozen=True, slots=True)
class Invocation:
    """How a run was started: enough to start it again the same way."""

    uri: str
    entry_point: str
    parameters: dict[str, str]
    command: str
    env_manager: str
    backend: str
    version: str | None = None
    commit: str | None = None
    dirty: bool = False
    env_hash: str | None = None
    python: str = ""
    backend_config: dict[str, Any] | None = None
    reproduces: str | None = None
    format: int = field(default=1)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, run_id: str) -> Invocation:
        try:
            data = json.loads(text)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError) as exc:
            raise InvalidStateError(
                f"Run '{run_id}' has an unreadable {INVOCATION_ARTIFACT}: {exc}"
            ) from exc


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 3] + "..."


def run_tags(
    source: ProjectSource,
    entry_point: str,
    command: str,
    env_manager: str,
    env_hash: str | None,
    backend: str,
    reproduces: str | None,
) -> dict[str, str]:
    """The tags a project run starts with (besides user, host and interpreter)."""
    tags = {
        TAG_SOURCE_NAME: source.uri,
        TAG_SOURCE_TYPE: "PROJECT",
        TAG_ENTRY_POINT: entry_point,
        TAG_ENV: env_manager,
        TAG_BACKEND: backend,
        TAG_COMMAND: _clip(command),
    }
    if source.commit is not None:
        tags[TAG_GIT_COMMIT] = source.commit
        tags[TAG_GIT_DIRTY] = str(source.dirty).lower()
        if source.repo_url:
            tags[TAG_GIT_REPO_URL] = source.repo_url
    if source.version is not None:
        tags[TAG_GIT_VERSION] = source.version
    if env_hash is not None:
        tags[TAG_ENV_HASH] = env_hash
    if reproduces is not None:
        tags[TAG_REPRODUCES] = reproduces
    return tags


def environment_tags(environment: Environment) -> dict[str, str]:
    """Tags known once the environment is ready."""
    tags = {}
    if environment.python:
        tags[TAG_PYTHON] = environment.python
    if environment.hash is not None:
        tags[TAG_ENV_HASH] = environment.hash
    if environment.image is not None:
        tags[TAG_DOCKER_IMAGE] = environment.image
    return tags


def failure_tags(reason: str, exit_code: int | None = None) -> dict[str, str]:
    tags = {TAG_FAILURE_REASON: _clip(reason)}
    if exit_code is not None:
        tags[TAG_EXIT_CODE] = str(exit_code)
    return tags

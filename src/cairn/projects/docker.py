"""``docker_env`` projects: the command runs in the declared image, with the project mounted.

Only where a Docker engine answers; elsewhere the run is refused before it is created.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cairn.errors import ProjectExecutionError
from cairn.projects.environments import Environment

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cairn.projects.spec import DockerEnv

__all__ = ["CONTAINER_PROJECT_DIR", "check_engine", "docker_argv", "docker_environment"]

CONTAINER_PROJECT_DIR = "/cairn/project"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def check_engine(image: str) -> None:
    """Raise, saying what to do, unless ``docker`` reaches an engine."""
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        reason = "the docker command is not installed"
    except subprocess.TimeoutExpired:
        reason = "the Docker engine did not answer within 20 s"
    else:
        if proc.returncode == 0 and proc.stdout.strip():
            return
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"docker version exited with {proc.returncode}"
    raise ProjectExecutionError(
        f"This project runs in Docker (image {image!r}), but no Docker engine is available: "
        f"{reason}. Start Docker, or run the project where an engine exists"
    )


def docker_environment(docker_env: DockerEnv) -> Environment:
    return Environment("docker", "", "", image=docker_env.image)


def _mounts_for(uri: str) -> list[str]:
    """Host folders the tracking store lives in, mounted at the same path in the container."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "sqlite" and ":///" in uri:
        return [str(Path(uri.split(":///", 1)[1]).parent)]
    if not scheme or len(scheme) == 1:
        return [uri]
    return []


def docker_argv(
    docker_env: DockerEnv,
    command: str,
    project_dir: Path,
    env: Mapping[str, str],
    tracking_uri: str,
) -> list[str]:
    """``docker run`` for ``command``: project at /cairn/project, run variables passed in."""
    argv = ["docker", "run", "--rm", "--init"]
    argv += ["-v", f"{project_dir}:{CONTAINER_PROJECT_DIR}", "-w", CONTAINER_PROJECT_DIR]
    for folder in _mounts_for(tracking_uri):
        argv += ["-v", f"{folder}:{folder}"]
    if urlsplit(tracking_uri).hostname in _LOCAL_HOSTS:
        argv += ["--network", "host"]  # a server on the host's loopback
    for volume in docker_env.volumes:
        argv += ["-v", volume]
    for name, value in env.items():
        if name.startswith("CAIRN_") or name in _RANK_VARIABLES:
            argv += ["-e", f"{name}={value}"]
    for name, fixed in docker_env.environment:
        argv += ["-e", name if fixed is None else f"{name}={fixed}"]
    return [*argv, docker_env.image, "sh", "-c", command]

"""What a run records about where it ran: interpreter, platform, host, packages and git state."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

__all__ = ["PACKAGES_ARTIFACT", "calling_script", "git_state", "installed_packages", "system_tags"]

PACKAGES_ARTIFACT = "environment/packages.txt"


@functools.cache
def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def calling_script() -> str | None:
    """The file of the ``__main__`` module, or None in an interactive session."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.abspath(path) if path else None


@functools.cache
def git_state(path: str) -> tuple[str, bool] | None:
    """``(commit, dirty)`` of the git work tree holding ``path``, or None outside one."""
    folder = str(Path(path).parent if Path(path).is_file() else Path(path))
    try:
        commit = subprocess.run(
            ["git", "-C", folder, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit, bool(status.strip())) if commit else None


@functools.cache
def _static_tags() -> dict[str, str]:
    return {
        "mlflow.user": current_user(),
        "cairn.python_version": platform.python_version(),
        "cairn.platform": platform.platform(),
        "cairn.host": socket.gethostname(),
    }


def system_tags() -> dict[str, str]:
    """Tags every new run gets: user, interpreter, platform, host, script and its git commit."""
    tags = dict(_static_tags())
    script = calling_script()
    if script is not None:
        tags["mlflow.source.name"] = script
        tags["mlflow.source.type"] = "LOCAL"
        state = git_state(script)
        if state is not None:
            tags["mlflow.source.git.commit"] = state[0]
            tags["cairn.source.git.dirty"] = str(state[1]).lower()
    return tags


@functools.cache
def installed_packages() -> str:
    """``name==version`` of every installed distribution, sorted (requirements format)."""
    from importlib import metadata

    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return "\n".join(seen[key] for key in sorted(seen)) + "\n"

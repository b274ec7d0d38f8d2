"""What a model needs to run elsewhere: ``requirements.txt`` and ``python_env.yaml``.

Versions are pinned to what is installed where the model is saved, because a model
unpickled under another scikit-learn can silently predict differently.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["PYTHON_ENV_FILE", "REQUIREMENTS_FILE", "pinned", "write_environment"]

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"


def pinned(packages: Iterable[str]) -> list[str]:
    """``name==version`` for each installed distribution; names that are not installed as-is."""
    out: list[str] = []
    for name in packages:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def write_environment(
    path: Path,
    requirements: Iterable[str],
    extra_pip_requirements: Iterable[str] | None = None,
    pip_requirements: Iterable[str] | None = None,
) -> dict[str, str]:
    """Write both files into the model folder; returns the pyfunc ``env`` entry."""
    import yaml

    lines = list(pip_requirements) if pip_requirements is not None else list(requirements)
    for extra in extra_pip_requirements or ():
        if extra not in lines:
            lines.append(extra)
    (path / REQUIREMENTS_FILE).write_text("".join(f"{line}\n" for line in lines))
    python_env = {
        "python": platform.python_version(),
        "build_dependencies": pinned(["pip", "setuptools", "wheel"]),
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }
    (path / PYTHON_ENV_FILE).write_text(yaml.safe_dump(python_env, sort_keys=False))
    return {"virtualenv": PYTHON_ENV_FILE}

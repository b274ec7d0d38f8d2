"""Project environments: a uv virtual environment built from ``python_env.yaml``, or this one.

```yaml
python: "3.11"
build_dependencies: [pip]
dependencies:
  - scikit-learn==1.5.2
  - -r requirements.txt          # read relative to the python_env.yaml
```

An environment is cached under ``<cache>/envs/<hash>``, the hash taken over the Python
version, the requirements, the Cairn that runs it and the platform, so the second run of a
project skips the build. Cairn itself is installed into each environment (unless the
requirements name ``cairn-ml``), so ``cairn.log_metric`` works inside the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cairn.errors import ProjectExecutionError, ProjectSpecError
from cairn.projects._cache import cache_root, file_lock
from cairn.projects._yaml import Located, load_yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "Environment",
    "PythonEnvSpec",
    "cached_environment",
    "cairn_requirement",
    "local_environment",
    "uv_environment",
]

MARKER_FILE = "cairn-env.json"  # written last: an environment without it is incomplete
_PYTHON_ENV_KEYS = ("python", "build_dependencies", "dependencies")


@dataclass(frozen=True, slots=True)
class PythonEnvSpec:
    """What ``python_env.yaml`` asks for, with ``-r`` files already read in."""

    python: str
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path) -> PythonEnvSpec:
        root = load_yaml(path)
        if root is None:
            raise ProjectSpecError(f'{path} is empty: it needs at least `python: "3.11"`')
        fields = root.mapping("a mapping with python and dependencies")
        root.reject_unknown(fields, _PYTHON_ENV_KEYS)
        if "python" not in fields:
            root.fail('python_env.yaml needs `python`, the Python version such as "3.11"')
        python = fields["python"].scalar_text('a Python version such as "3.11"')
        return cls(
            python=python,
            build_dependencies=_requirements(fields.get("build_dependencies"), path.parent),
            dependencies=_requirements(fields.get("dependencies"), path.parent),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "build_dependencies": list(self.build_dependencies),
            "dependencies": list(self.dependencies),
        }


def _requirements(node: Located | None, base: Path) -> tuple[str, ...]:
    if node is None or node.value() is None:
        return ()
    out: list[str] = []
    for item in node.sequence("a list of requirements"):
        line = item.string("a requirement such as numpy>=1.26")
        parts = line.split(maxsplit=1)
        if parts[0] in ("-r", "--requirement") and len(parts) == 2:
            out.extend(_read_requirements(base / parts[1], item))
        else:
            out.append(line.strip())
    return tuple(out)


def _read_requirements(path: Path, node: Located, depth: int = 0) -> list[str]:
    if depth > 10:
        node.fail(f"requirements files include each other too deeply at {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        node.fail(f"cannot read requirements file {path}: {exc.strerror or exc}")
    out: list[str] = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if parts[0] in ("-r", "--requirement") and len(parts) == 2:
            out.extend(_read_requirements(path.parent / parts[1], node, depth + 1))
        else:
            out.append(line)
    return out


@dataclass(frozen=True, slots=True)
class Environment:
    """Where a project's command runs: the interpreter on PATH and what is installed."""

    manager: str  # "uv", "local" or "docker"
    python: str  # full version, e.g. 3.11.7
    packages: str  # name==version lines, as `pip freeze` prints them
    bin_dir: Path | None = None  # put first on PATH; None for docker
    hash: str | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)
    image: str | None = None

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with this environment's interpreter first on PATH, as ``activate`` does."""
        env = dict(base)
        if self.bin_dir is not None:
            env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", os.defpath)])
            env.pop("PYTHONHOME", None)
            if self.manager == "uv":
                env["VIRTUAL_ENV"] = str(self.bin_dir.parent)
        return env


def local_environment() -> Environment:
    """The interpreter running Cairn, as is (``--env-manager local``)."""
    from cairn.tracking._environment import installed_packages

    return Environment(
        "local", platform.python_version(), installed_packages(), Path(sys.executable).parent
    )


def cairn_requirement() -> str:
    """How to install the running Cairn elsewhere: its source folder or its released version."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("cairn-ml")
    except importlib.metadata.PackageNotFoundError:
        return f"cairn-ml=={_version()}"
    direct = dist.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        url = str(info.get("url", ""))
        if url.startswith("file://") and "dir_info" in info:
            path = urlsplit(url).path
            return f"-e {path}" if info["dir_info"].get("editable") else path
    return f"cairn-ml=={dist.version}"


def _version() -> str:
    from cairn import __version__

    return __version__


def _names_cairn(requirements: tuple[str, ...], cairn: str) -> bool:
    for line in requirements:
        name = line.split(";")[0].replace("_", "-").lower().strip()
        if name.startswith("cairn-ml") or line.strip() == cairn or _same_path(line, cairn):
            return True
    return False


def _same_path(line: str, cairn: str) -> bool:
    """``-e file:///src/cairn`` (from pip freeze) and ``-e /src/cairn`` are the same install."""

    def path_of(text: str) -> str:
        text = text.removeprefix("-e").strip()
        return urlsplit(text).path if text.startswith("file:") else text

    return path_of(line) == path_of(cairn)


def _install_list(spec: PythonEnvSpec) -> tuple[str, ...]:
    cairn = cairn_requirement()
    if _names_cairn(spec.dependencies, cairn):
        return spec.dependencies
    return (*spec.dependencies, cairn)


def environment_hash(spec: PythonEnvSpec, project_dir: Path) -> str:
    """The cache key: same inputs, same environment."""
    install = _install_list(spec)
    document: dict[str, Any] = {
        **spec.to_dict(),
        "install": list(install),
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    if any(_inside_project(line) for line in (*install, *spec.build_dependencies)):
        document["project_dir"] = str(project_dir)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def _inside_project(requirement: str) -> bool:
    """``.`` or ``-e ./lib``: the environment then depends on where the project is."""
    text = requirement.removeprefix("--editable").removeprefix("-e").strip()
    return text.startswith(".")


def _uv() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise ProjectExecutionError(
                "uv is not installed: `pip install uv`, or run with --env-manager local"
            ) from None
        return found


def _envs_root() -> Path:
    return cache_root() / "envs"


def _python_in(root: Path) -> Path:
    return root / "bin" / "python"


def cached_environment(env_hash: str) -> Environment | None:
    """The complete environment cached under ``env_hash``, if it is still there."""
    root = _envs_root() / env_hash
    try:
        record = json.loads((root / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not _python_in(root).exists():
        return None
    return Environment(
        "uv",
        record["python"],
        record["packages"],
        root / "bin",
        env_hash,
        record.get("spec", {}),
    )


def uv_environment(
    spec: PythonEnvSpec,
    project_dir: Path,
    *,
    announce: Callable[[str], None] | None = None,
) -> Environment:
    """The environment for ``spec``: from the cache, or built with uv (under a lock) first."""
    env_hash = environment_hash(spec, project_dir)
    found = cached_environment(env_hash)
    if found is not None:
        return found
    root = _envs_root() / env_hash
    with file_lock(_envs_root() / f"{env_hash}.lock"):
        found = cached_environment(env_hash)  # another process may have built it meanwhile
        if found is not None:
            return found
        if announce is not None:
            count = len(spec.dependencies)
            announce(
                f"Building environment {env_hash} with uv: Python {spec.python}, "
                f"{count} requirement{'s' if count != 1 else ''} (cached for later runs)"
            )
        shutil.rmtree(root, ignore_errors=True)  # what an interrupted build left
        try:
            return _build(spec, project_dir, root, env_hash)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise


def _run_uv(args: list[str], cwd: Path, what: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    proc = subprocess.run(
        [_uv(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ProjectExecutionError(f"Could not build the environment: {what} failed:\n{tail}")
    return proc.stdout


def _build(spec: PythonEnvSpec, project_dir: Path, root: Path, env_hash: str) -> Environment:
    root.parent.mkdir(parents=True, exist_ok=True)
    _run_uv(
        ["venv", "--quiet", "--no-project", "--python", spec.python, str(root)],
        project_dir,
        f"creating a Python {spec.python} environment",
    )
    python = str(_python_in(root))
    with tempfile.TemporaryDirectory(prefix="cairn-reqs-") as tmp:
        for what, requirements in (
            ("installing build_dependencies", spec.build_dependencies),
            ("installing dependencies", _install_list(spec)),
        ):
            if not requirements:
                continue
            listing = Path(tmp, "requirements.txt")
            listing.write_text("\n".join(requirements) + "\n")
            # Relative requirements (`-e .`) resolve against the project, as pip would there.
            _run_uv(["pip", "install", "--python", python, "-r", str(listing)], project_dir, what)
    packages = _run_uv(["pip", "freeze", "--python", python], project_dir, "listing packages")
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    record = {"python": version, "packages": packages, "spec": spec.to_dict(), "hash": env_hash}
    (root / MARKER_FILE).write_text(json.dumps(record, indent=2))
    return Environment("uv", version, packages, root / "bin", env_hash, spec.to_dict())

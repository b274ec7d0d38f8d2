"""The ``MLproject`` file: name, environment and entry points, validated with file and line.

```yaml
name: housing
python_env: python_env.yaml          # or docker_env: {image: ...}
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
      data: path                     # shorthand: a type, no default (required)
    command: "python train.py --alpha {alpha} --data {data}"
```

A folder without an ``MLproject`` file runs ``.py`` and ``.sh`` files as entry points by name
(``-e train.py``), with ``python_env.yaml`` beside them as its environment when present.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import ProjectSpecError
from cairn.projects._yaml import Located, load_yaml

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "PARAMETER_TYPES",
    "DockerEnv",
    "EntryPoint",
    "Parameter",
    "ProjectSpec",
    "find_spec_file",
    "load_project",
]

PARAMETER_TYPES = ("float", "int", "string", "path", "uri")
PYTHON_ENV_FILE = "python_env.yaml"
SCRIPT_RUNNERS = {".py": "python", ".sh": "bash"}
_TOP_KEYS = ("name", "python_env", "docker_env", "conda_env", "entry_points")
_PARAMETER_KEYS = ("type", "default")
_ENTRY_POINT_KEYS = ("parameters", "command")
_DOCKER_KEYS = ("image", "volumes", "environment")
# `{name}` placeholders; `{{`/`}}` are literal braces (as in MLflow's str.format templates) and
# `${NAME}` is left to the shell.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|(\$?)\{([^{}\s]+)\}")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One declared entry-point parameter; ``default`` None means the parameter is required."""

    name: str
    type: str = "string"
    default: str | None = None


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """A named command template with its typed parameters."""

    name: str
    command: str
    parameters: Mapping[str, Parameter] = field(default_factory=dict)

    def render(self, values: Mapping[str, str]) -> str:
        """The command with every ``{name}`` replaced by its shell-quoted value.

        Values not declared as parameters are appended as ``--name value``, as MLflow does.
        """

        def substitute(match: re.Match[str]) -> str:
            text = match.group(0)
            if text in ("{{", "}}"):
                return text[0]
            dollar, name = match.group(1), match.group(2)
            if dollar:
                return text
            return shlex.quote(values[name])

        command = _PLACEHOLDER.sub(substitute, self.command)
        extra = [
            f"--{name} {shlex.quote(value)}"
            for name, value in values.items()
            if name not in self.parameters
        ]
        return " ".join([command, *extra])


@dataclass(frozen=True, slots=True)
class DockerEnv:
    """``docker_env``: the image to run in, extra volumes and environment variables."""

    image: str
    volumes: tuple[str, ...] = ()
    # ("NAME", None) copies NAME from the caller's environment; ("NAME", "v") sets it.
    environment: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class ProjectSpec:
    """A loaded project: its folder, entry points and environment declaration."""

    name: str
    directory: Path
    entry_points: Mapping[str, EntryPoint]
    python_env: Path | None = None
    docker_env: DockerEnv | None = None
    spec_file: Path | None = None

    def entry_point(self, name: str) -> EntryPoint:
        """The declared entry point, or a ``.py``/``.sh`` file of the project run by name."""
        if name in self.entry_points:
            return self.entry_points[name]
        runner = SCRIPT_RUNNERS.get(Path(name).suffix)
        script = (self.directory / name).resolve()
        if runner is not None and script.is_file() and script.is_relative_to(self.directory):
            return EntryPoint(name, f"{runner} {shlex.quote(name)}")
        declared = ", ".join(sorted(self.entry_points)) or "none"
        where = self.spec_file or self.directory
        raise ProjectSpecError(
            f"Unknown entry point {name!r} in {where} (declared: {declared}); "
            f"a .py or .sh file of the project can also be run by its name"
        )


def find_spec_file(directory: Path) -> Path | None:
    """The project's ``MLproject`` file (any letter case, as MLflow accepts)."""
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError:
        return None
    for name in names:
        if name.lower() == "mlproject" and (directory / name).is_file():
            return directory / name
    return None


def load_project(directory: Path) -> ProjectSpec:
    """Read and validate the project in ``directory``."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise ProjectSpecError(f"No project at {directory}: not a folder")
    spec_file = find_spec_file(directory)
    if spec_file is None:
        default_env = directory / PYTHON_ENV_FILE
        return ProjectSpec(
            name=directory.name,
            directory=directory,
            entry_points={},
            python_env=default_env if default_env.is_file() else None,
        )
    root = load_yaml(spec_file)
    if root is None:
        raise ProjectSpecError(f"{spec_file} is empty: it needs at least `entry_points`")
    top = root.mapping("a mapping with name, python_env and entry_points")
    root.reject_unknown(top, _TOP_KEYS)
    if "conda_env" in top:
        top["conda_env"].fail(
            "conda environments are not supported; declare `python_env: python_env.yaml` "
            "(python version + pip requirements) instead"
        )
    if "python_env" in top and "docker_env" in top:
        top["docker_env"].fail("give one environment: python_env or docker_env, not both")
    name = top["name"].string("a project name") if "name" in top else directory.name
    python_env = _python_env(top["python_env"], directory) if "python_env" in top else None
    docker_env = _docker_env(top["docker_env"]) if "docker_env" in top else None
    entry_points: dict[str, EntryPoint] = {}
    if "entry_points" in top:
        for entry_name, entry in top["entry_points"].mapping("a mapping of entry points").items():
            entry_points[entry_name] = _entry_point(entry_name, entry)
    return ProjectSpec(name, directory, entry_points, python_env, docker_env, spec_file)


def _python_env(node: Located, directory: Path) -> Path:
    relative = node.string("the path of a python_env.yaml file in the project")
    path = (directory / relative).resolve()
    if not path.is_relative_to(directory):
        node.fail(f"{relative!r} is outside the project folder")
    if not path.is_file():
        node.fail(f"{relative!r} does not exist in {directory}")
    return path


def _docker_env(node: Located) -> DockerEnv:
    fields = node.mapping("a mapping with an image")
    node.reject_unknown(fields, _DOCKER_KEYS)
    if "image" not in fields:
        node.fail("docker_env needs an `image`", at_key=True)
    volumes = tuple(
        v.string("a volume such as /host/path:/container/path")
        for v in (fields["volumes"].sequence() if "volumes" in fields else [])
    )
    environment: list[tuple[str, str | None]] = []
    for item in fields["environment"].sequence() if "environment" in fields else []:
        if isinstance(item.value(), str):
            environment.append((item.string(), None))
            continue
        pair = item.sequence("a variable name or a [NAME, value] pair")
        if len(pair) != 2:
            item.expected("a [NAME, value] pair")
        environment.append((pair[0].string("a variable name"), pair[1].scalar_text("a value")))
    return DockerEnv(fields["image"].string("an image name"), volumes, tuple(environment))


def _entry_point(name: str, node: Located) -> EntryPoint:
    fields = node.mapping("a mapping with a command and parameters")
    node.reject_unknown(fields, _ENTRY_POINT_KEYS)
    if "command" not in fields:
        node.fail(f"entry point {name!r} needs a `command`", at_key=True)
    command = fields["command"].string("a command string")
    parameters: dict[str, Parameter] = {}
    if "parameters" in fields and fields["parameters"].value() is not None:
        for param_name, param in fields["parameters"].mapping("a mapping of parameters").items():
            parameters[param_name] = _parameter(param_name, param)
    for match in _PLACEHOLDER.finditer(command):
        used = match.group(2)
        if used is not None and not match.group(1) and used not in parameters:
            declared = ", ".join(sorted(parameters)) or "none"
            fields["command"].fail(
                f"the command uses {{{used}}}, which is not a parameter of entry point "
                f"{name!r} (declared: {declared}); write {{{{ and }}}} for literal braces"
            )
    return EntryPoint(name, command, parameters)


def _parameter(name: str, node: Located) -> Parameter:
    types = ", ".join(PARAMETER_TYPES)
    if isinstance(node.value(), str):  # shorthand `alpha: float`
        kind = node.string()
        if kind not in PARAMETER_TYPES:
            node.fail(f"unknown parameter type {kind!r}; expected one of {types}")
        return Parameter(name, kind)
    fields = node.mapping(f"a parameter type ({types}) or a mapping with type and default")
    node.reject_unknown(fields, _PARAMETER_KEYS)
    kind = fields["type"].string(f"one of {types}") if "type" in fields else "string"
    if kind not in PARAMETER_TYPES:
        fields["type"].fail(f"unknown parameter type {kind!r}; expected one of {types}")
    default = None
    if "default" in fields and fields["default"].value() is not None:
        default = fields["default"].scalar_text("a default value")
        from cairn.projects.parameters import check_type

        problem = check_type(kind, default)
        if problem is not None:
            fields["default"].fail(f"default {default!r} is not {problem}")
    return Parameter(name, kind, default)

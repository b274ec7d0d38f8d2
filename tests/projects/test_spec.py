from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.errors import ProjectSpecError
from cairn.projects.spec import DockerEnv, EntryPoint, Parameter, load_project

Writer = Callable[[Path, dict[str, str]], Path]


def test_full_spec_loads(tmp_path: Path, write_project: Writer) -> None:
    folder = write_project(
        tmp_path / "p",
        {
            "MLproject": """\
                name: housing
                python_env: envs/python_env.yaml
                entry_points:
                  main:
                    parameters:
                      alpha: {type: float, default: 0.1}
                      depth: {type: int, default: 3}
                      data: path
                      name: {default: ridge}
                    command: "python train.py --alpha {alpha} --data {data}"
                  evaluate:
                    command: python eval.py
            """,
            "envs/python_env.yaml": "python: '3.11'\n",
        },
    )
    spec = load_project(folder)
    assert spec.name == "housing"
    assert spec.python_env == folder / "envs" / "python_env.yaml"
    assert spec.spec_file == folder / "MLproject"
    main = spec.entry_point("main")
    assert main.parameters == {
        "alpha": Parameter("alpha", "float", "0.1"),
        "depth": Parameter("depth", "int", "3"),
        "data": Parameter("data", "path", None),
        "name": Parameter("name", "string", "ridge"),
    }
    assert spec.entry_point("evaluate").parameters == {}


def test_docker_env_is_parsed(tmp_path: Path, write_project: Writer) -> None:
    folder = write_project(
        tmp_path / "p",
        {
            "MLproject": """\
                docker_env:
                  image: ghcr.io/org/train:1.0
                  volumes: ["/data:/data"]
                  environment: [HOME, [MODE, fast]]
                entry_points:
                  main: {command: python train.py}
            """
        },
    )
    spec = load_project(folder)
    assert spec.name == "p"
    assert spec.docker_env == DockerEnv(
        "ghcr.io/org/train:1.0", ("/data:/data",), (("HOME", None), ("MODE", "fast"))
    )


def test_render_quotes_values_and_appends_extras() -> None:
    entry = EntryPoint(
        "main",
        "python train.py --name {name} ${HOME} {{literal}}",
        {"name": Parameter("name", "string")},
    )
    rendered = entry.render({"name": "1; rm -rf ~", "extra": "a b"})
    assert rendered == "python train.py --name '1; rm -rf ~' ${HOME} {literal} --extra 'a b'"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("entry_points:\n  main: [\n", 3, "not valid YAML"),
        ("name: x\nentry_points:\n  main:\n    comand: run\n", 4, "unknown key; expected one of"),
        ("entry_points:\n  main:\n    parameters: {}\n", 2, "entry point 'main' needs a `command`"),
        (
            "entry_points:\n  main:\n    parameters:\n      a: double\n    command: x {a}\n",
            4,
            "unknown parameter type 'double'; expected one of float, int, string, path, uri",
        ),
        (
            "entry_points:\n  main:\n    parameters:\n      a: {type: int, default: 1.5}\n"
            "    command: x {a}\n",
            4,
            "default '1.5' is not an integer",
        ),
        (
            "entry_points:\n  main:\n    command: python t.py {alpah}\n",
            3,
            r"uses \{alpah\}, which is not a parameter of entry point 'main' \(declared: none\)",
        ),
        ("entry_points:\n  main:\n    command: [python]\n", 3, "expected a command string"),
        ("conda_env: conda.yaml\nentry_points: {}\n", 1, "conda environments are not supported"),
        ("python_env: missing.yaml\n", 1, "'missing.yaml' does not exist"),
        ("python_env: ../outside.yaml\n", 1, "is outside the project folder"),
        ("- a\n- b\n", 1, "expected a mapping with name, python_env and entry_points, got a list"),
    ],
)
def test_invalid_spec_names_file_and_line(
    tmp_path: Path, write_project: Writer, text: str, line: int, message: str
) -> None:
    folder = write_project(tmp_path / "p", {"MLproject": text})
    with pytest.raises(ProjectSpecError, match=rf"MLproject, line {line}\b.*{message}"):
        load_project(folder)


def test_empty_spec_is_refused(tmp_path: Path, write_project: Writer) -> None:
    folder = write_project(tmp_path / "p", {"MLproject": ""})
    with pytest.raises(ProjectSpecError, match="MLproject is empty"):
        load_project(folder)


def test_folder_without_mlproject_runs_scripts_by_name(
    tmp_path: Path, write_project: Writer
) -> None:
    folder = write_project(
        tmp_path / "p",
        {"train.py": "print(1)\n", "prep.sh": "echo hi\n", "python_env.yaml": "python: '3.11'\n"},
    )
    spec = load_project(folder)
    assert spec.spec_file is None
    assert spec.python_env == folder / "python_env.yaml"
    assert spec.entry_point("train.py").command == "python train.py"
    assert spec.entry_point("prep.sh").command == "bash prep.sh"
    with pytest.raises(ProjectSpecError, match=r"Unknown entry point 'main' .*declared: none"):
        spec.entry_point("main")
    with pytest.raises(ProjectSpecError, match=r"Unknown entry point 'missing\.py'"):
        spec.entry_point("missing.py")
    (tmp_path / "outside.py").write_text("print(1)\n")
    with pytest.raises(ProjectSpecError, match=r"Unknown entry point '\.\./outside\.py'"):
        spec.entry_point("../outside.py")


def test_declared_project_also_runs_scripts(project: Path) -> None:
    spec = load_project(project)
    assert spec.entry_point("train.py").command == "python train.py"
    with pytest.raises(
        ProjectSpecError, match=r"Unknown entry point 'nope' .*declared: fail, main"
    ):
        spec.entry_point("nope")


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectSpecError, match=r"No project at .*: not a folder"):
        load_project(tmp_path / "absent")

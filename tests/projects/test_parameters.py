from __future__ import annotations

import subprocess
from pathlib import Path

import fsspec
import pytest

from cairn.errors import ProjectExecutionError, ProjectSpecError
from cairn.projects.parameters import localize, resolve_parameters
from cairn.projects.spec import EntryPoint, Parameter

ENTRY = EntryPoint(
    "main",
    "python train.py {alpha} {epochs} {name} {data} {model}",
    {
        "alpha": Parameter("alpha", "float", "0.1"),
        "epochs": Parameter("epochs", "int"),
        "name": Parameter("name", "string", "ridge"),
        "data": Parameter("data", "path", "data.csv"),
        "model": Parameter("model", "uri", "models/out"),
    },
)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(caller's working directory, project folder), each with a data.csv."""
    cwd, project = tmp_path / "cwd", tmp_path / "project"
    for folder in (cwd, project):
        folder.mkdir()
        (folder / "data.csv").write_text("x\n1\n")
    return cwd, project


def test_defaults_and_given_values_resolve(folders: tuple[Path, Path]) -> None:
    cwd, project = folders
    values = resolve_parameters(ENTRY, {"epochs": 5}, cwd=cwd, project_dir=project)
    # Defaults resolve against the project; values the user gives against their cwd.
    assert values == {
        "alpha": "0.1",
        "epochs": "5",
        "name": "ridge",
        "data": str(project / "data.csv"),
        "model": str(project / "models" / "out"),
    }
    given = {"epochs": "7", "data": "data.csv", "model": "s3://bucket/m", "alpha": 1e-3}
    values = resolve_parameters(ENTRY, given, cwd=cwd, project_dir=project)
    assert values["data"] == str(cwd / "data.csv")
    assert values["model"] == "s3://bucket/m"
    assert values["alpha"] == "0.001"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, r"Entry point 'main' needs parameter 'epochs' \(int\): pass -P epochs=VALUE"),
        (
            {"epochs": "1.5"},
            "Parameter 'epochs' of entry point 'main' must be an integer, got '1.5'",
        ),
        ({"epochs": 1, "alpha": "fast"}, "must be a float, got 'fast'"),
        ({"epochs": 1, "data": "missing.csv"}, r"'data' .* is a path, but .*missing\.csv does not"),
        ({"epochs": 1, "bad*name": "x"}, r"Invalid param name 'bad\*name'"),
        ({"epochs": 1, "name": ["a"]}, "list values cannot be passed on a command line"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(
    folders: tuple[Path, Path], given: dict[str, object], message: str
) -> None:
    cwd, project = folders
    with pytest.raises(ProjectSpecError, match=message):
        resolve_parameters(ENTRY, given, cwd=cwd, project_dir=project)


def test_shell_metacharacters_reach_the_command_as_one_string(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    cwd, project = folders
    canary = tmp_path / "canary"
    canary.write_text("still here")
    entry = EntryPoint(
        "main",
        "printf '%s\\n' {name}",
        {"name": Parameter("name", "string")},
    )
    hostile = f"1; rm -rf {canary}; echo $(whoami) `id` && true | cat"
    values = resolve_parameters(
        entry, {"name": hostile, "extra": "x; exit 9"}, cwd=cwd, project_dir=project
    )
    command = entry.render(values)
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [hostile, "--extra", "x; exit 9"]
    assert canary.read_text() == "still here"


def test_remote_path_parameters_are_downloaded(folders: tuple[Path, Path], tmp_path: Path) -> None:
    cwd, project = folders
    fs = fsspec.filesystem("memory")
    fs.pipe("/cairn-test/data/train.csv", b"a,b\n1,2\n")
    fs.pipe("/cairn-test/folder/part-0.csv", b"x\n")
    entry = EntryPoint(
        "main",
        "cat {data}",
        {"data": Parameter("data", "path"), "dir": Parameter("dir", "path", "memory://nope")},
    )
    given = {"data": "memory://cairn-test/data/train.csv", "dir": "memory://cairn-test/folder"}
    values = resolve_parameters(entry, given, cwd=cwd, project_dir=project)
    assert values == given  # the run records the URI
    local = localize(entry, values, tmp_path / "inputs")
    assert Path(local["data"]).read_bytes() == b"a,b\n1,2\n"
    assert (Path(local["dir"]) / "part-0.csv").read_bytes() == b"x\n"
    with pytest.raises(ProjectExecutionError, match="Could not download parameter 'dir'"):
        localize(entry, {**values, "dir": "memory://nope"}, tmp_path / "again")

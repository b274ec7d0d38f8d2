from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import pytest

from cairn.errors import ProjectSpecError
from cairn.projects.environments import (
    PythonEnvSpec,
    cairn_requirement,
    environment_hash,
    local_environment,
    uv_environment,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Writer = Callable[[Path, dict[str, str]], Path]


def test_python_env_reads_requirement_files(tmp_path: Path, write_project: Writer) -> None:
    folder = write_project(
        tmp_path / "p",
        {
            "python_env.yaml": """\
                python: 3.11
                build_dependencies: [pip]
                dependencies:
                  - numpy>=1.26
                  - -r requirements.txt
            """,
            "requirements.txt": "# pinned\npandas==2.2.3  # data\n\n-r more/extra.txt\n",
            "more/extra.txt": "pyyaml\n",
        },
    )
    spec = PythonEnvSpec.load(folder / "python_env.yaml")
    assert spec == PythonEnvSpec("3.11", ("pip",), ("numpy>=1.26", "pandas==2.2.3", "pyyaml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dependencies: [a]\n", r"line 1: python_env.yaml needs `python`"),
        ("python: '3.11'\npackages: [a]\n", r"line 2: packages: unknown key"),
        ("python: '3.11'\ndependencies: numpy\n", r"line 2: dependencies: expected a list"),
        ("python: '3.11'\ndependencies: [-r nope.txt]\n", r"line 2: .*cannot read .*nope\.txt"),
        ("python: [3]\n", r"line 1: python: expected a Python version"),
    ],
)
def test_bad_python_env_names_the_line(
    tmp_path: Path, write_project: Writer, text: str, message: str
) -> None:
    folder = write_project(tmp_path / "p", {"python_env.yaml": text})
    with pytest.raises(ProjectSpecError, match=message):
        PythonEnvSpec.load(folder / "python_env.yaml")


def test_hash_follows_what_is_installed(tmp_path: Path) -> None:
    spec = PythonEnvSpec("3.11", (), ("pyyaml",))
    here, there = tmp_path / "a", tmp_path / "b"
    assert environment_hash(spec, here) == environment_hash(
        PythonEnvSpec("3.11", (), ("pyyaml",)), there
    )
    assert environment_hash(spec, here) != environment_hash(
        PythonEnvSpec("3.12", (), ("pyyaml",)), here
    )
    assert environment_hash(spec, here) != environment_hash(
        PythonEnvSpec("3.11", (), ("pyyaml==6.0.2",)), here
    )
    # A requirement inside the project ties the environment to where the project is.
    local = PythonEnvSpec("3.11", (), ("-e ./lib",))
    assert environment_hash(local, here) != environment_hash(local, there)


def test_local_environment_puts_this_interpreter_first() -> None:
    env = local_environment()
    assert env.manager == "local" and env.hash is None
    child = env.child_env({"PATH": "/usr/bin", "PYTHONHOME": "/x"})
    assert child["PATH"].split(":")[0] == str(env.bin_dir)
    assert "PYTHONHOME" not in child
    assert env.bin_dir is not None and (env.bin_dir / "python").exists()
    assert sys.executable.startswith(str(env.bin_dir))


def test_concurrent_builds_of_one_environment_build_it_once(tmp_path: Path) -> None:
    python = "{}.{}".format(*sys.version_info[:2])
    spec = PythonEnvSpec(python, (), ("pyyaml",))
    messages: list[str] = []
    results = []

    def build() -> None:
        results.append(uv_environment(spec, tmp_path, announce=messages.append))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert [m for m in messages if m.startswith("Building environment")] == [messages[0]]
    packages = results[0].packages.lower()
    assert "pyyaml==" in packages
    # The running Cairn is installed too, as it is installed here (editable from its source).
    requirement = cairn_requirement()
    assert requirement.removeprefix("-e ") in packages or "cairn-ml==" in packages
    assert results[0].bin_dir is not None and (results[0].bin_dir / "python").exists()

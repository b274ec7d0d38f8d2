"""docker_env projects, with a stand-in ``docker`` on PATH (no engine exists on test machines)."""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING

import pytest

import cairn
from cairn.entities import RunStatus
from cairn.errors import ProjectExecutionError
from cairn.projects import run

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

MLPROJECT = """\
docker_env:
  image: example/train:1.0
  volumes: ["/data:/data"]
  environment: [[MODE, fast]]
entry_points:
  main:
    parameters: {alpha: {type: float, default: 0.5}}
    command: python train.py --alpha {alpha}
"""

# `docker version` answers like the real CLI; `docker run` records its arguments.
FAKE_DOCKER = """\
#!/usr/bin/env python3
import json, os, sys
if sys.argv[1] == "version":
    if os.environ.get("FAKE_DOCKER_ENGINE") != "up":
        sys.exit("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
    print("28.2.2")
    sys.exit(0)
with open(os.environ["FAKE_DOCKER_LOG"], "w") as f:
    json.dump(sys.argv[1:], f)
print("ran in a container")
"""


@pytest.fixture
def docker_project(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_project: Callable[[Path, dict[str, str]], Path],
) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "docker-args.json"))
    return write_project(tmp_path / "dockerized", {"MLproject": MLPROJECT})


def test_without_an_engine_the_run_is_refused_before_it_exists(
    store: str, docker_project: Path
) -> None:
    with pytest.raises(
        ProjectExecutionError,
        match=r"runs in Docker \(image 'example/train:1\.0'\), but no Docker engine is available: "
        r"Cannot connect to the Docker daemon",
    ):
        run(str(docker_project))
    assert cairn.search_runs(experiment_ids=["0"]) == []


def test_with_an_engine_the_command_runs_in_the_image(
    store: str, docker_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_ENGINE", "up")
    result = run(str(docker_project), parameters={"alpha": 0.7}, echo=False)
    assert result.status is RunStatus.FINISHED
    argv = json.loads((tmp_path / "docker-args.json").read_text())
    assert argv[:2] == ["run", "--rm"]
    assert argv[-4:] == ["example/train:1.0", "sh", "-c", "python train.py --alpha 0.7"]
    assert f"{docker_project}:/cairn/project" in argv and "/data:/data" in argv
    assert f"{store}:{store}" in argv  # the folder store, at the same path inside
    assert f"CAIRN_RUN_ID={result.run_id}" in argv and "MODE=fast" in argv
    stored = cairn.get_run(result.run_id)
    assert stored.data.tags["mlflow.project.env"] == "docker"
    assert stored.data.tags["mlflow.docker.image.name"] == "example/train:1.0"
    logged = cairn.download_artifacts("logs/stdout.txt", run_id=result.run_id)
    with open(logged) as f:
        assert f.read() == "ran in a container\n"

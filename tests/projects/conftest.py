"""Fixtures for project tests: a private Cairn cache, a tracking store, project folders."""

from __future__ import annotations

import subprocess
import textwrap
from typing import TYPE_CHECKING

import pytest

import cairn

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TRAIN_PY = """\
import argparse

import cairn

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float)
parser.add_argument("--label")
args = parser.parse_args()
print(f"training alpha={args.alpha} label={args.label!r}")
cairn.log_metric("score", args.alpha * 2)
"""

MLPROJECT = """\
name: demo
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
      label: string
    command: "python train.py --alpha {alpha} --label {label}"
  fail:
    parameters:
      code: {type: int, default: 3}
    command: "echo failing >&2; exit {code}"
"""


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Git mirrors and environments go into the test's tmp dir, never ~/.cache."""
    cache = tmp_path / "cairn-cache"
    monkeypatch.setenv("CAIRN_HOME", str(cache))
    return cache


@pytest.fixture
def store(tmp_path: Path) -> str:
    uri = str(tmp_path / "store")
    cairn.set_tracking_uri(uri)
    return uri


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def write_project() -> Callable[[Path, dict[str, str]], Path]:
    """``write_project(folder, {relative path: text})`` creates the files (dedented)."""
    return _write


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(folder, *args)`` runs git there and returns its stdout."""
    return _git


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose `main` logs a metric through the fluent API and `fail` exits 3."""
    return _write(tmp_path / "project", {"MLproject": MLPROJECT, "train.py": TRAIN_PY})


@pytest.fixture
def repo(project: Path) -> Path:
    """``project`` as a git repository with one commit on ``main``."""
    _git(project, "init", "--quiet", "--initial-branch=main")
    _git(project, "config", "user.email", "test@example.com")
    _git(project, "config", "user.name", "Test")
    _git(project, "add", "-A")
    _git(project, "commit", "--quiet", "-m", "first")
    return project

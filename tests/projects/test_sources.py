from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from cairn.errors import NotFoundError, ProjectExecutionError, ProjectSpecError
from cairn.projects.sources import open_source, split_uri

if TYPE_CHECKING:
    from pathlib import Path

Git = Callable[..., str]


def test_split_uri_keeps_subdirectory_inside() -> None:
    assert split_uri("repo#sub/dir/") == ("repo", "sub/dir")
    assert split_uri("https://host/org/repo.git") == ("https://host/org/repo.git", "")
    for bad in ("repo#../up", "repo#a/../../up", "#sub"):
        with pytest.raises(ProjectSpecError, match=r"must stay inside|names no folder"):
            split_uri(bad)


def test_local_folder_runs_in_place(tmp_path: Path, project: Path) -> None:
    (project / "sub").mkdir()
    with open_source("project#sub", cwd=tmp_path) as source:
        assert source.project_dir == project / "sub"
        assert source.uri == f"{project}#sub"
        assert (source.commit, source.dirty, source.is_git) == (None, False, False)
    with pytest.raises(NotFoundError, match="has no folder 'nope'"), open_source(f"{project}#nope"):
        pass
    with (
        pytest.raises(NotFoundError, match=r"No project at .*absent: not a folder"),
        open_source(str(tmp_path / "absent")),
    ):
        pass
    with (
        pytest.raises(ProjectSpecError, match="--version needs a git repository"),
        open_source(str(project), version="main"),
    ):
        pass


def test_local_work_tree_records_commit_and_dirty(repo: Path, git: Git) -> None:
    head = git(repo, "rev-parse", "HEAD")
    with open_source(str(repo)) as source:
        assert (source.commit, source.dirty, source.project_dir) == (head, False, repo)
    (repo / "train.py").write_text("print('changed')\n")
    with open_source(str(repo)) as source:
        assert (source.commit, source.dirty) == (head, True)


def test_git_url_checks_out_branch_tag_and_commit(
    tmp_path: Path, repo: Path, git: Git, _private_cache: Path
) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    (repo / "nested").mkdir()
    (repo / "nested" / "MLproject").write_text("entry_points: {}\n")
    (repo / "train.py").write_text("print('second')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "second")
    second = git(repo, "rev-parse", "HEAD")
    url = f"file://{repo}"
    with open_source(url) as source:
        assert source.commit == second and source.repo_url == url and source.uri == url
        assert (source.project_dir / "train.py").read_text() == "print('second')\n"
        checkout = source.project_dir
        assert _private_cache in checkout.parents  # never inside the repository itself
    assert not checkout.exists()  # each run gets a fresh checkout, removed afterwards
    with open_source(url, version="v1") as source:
        assert source.commit == first and source.version == "v1"
        assert not (source.project_dir / "nested").exists()
    with open_source(f"{url}#nested", version=second[:10]) as source:
        assert source.commit == second
        assert source.project_dir.name == "nested"
    # A local work tree with --version goes through the same mirror and checkout.
    with open_source(str(repo / "nested"), version="main") as source:
        assert source.commit == second and source.project_dir.name == "nested"
        assert source.uri == str(repo / "nested")


def test_new_commits_are_fetched_into_the_mirror(repo: Path, git: Git) -> None:
    url = f"file://{repo}"
    with open_source(url) as source:
        before = source.commit
    (repo / "more.txt").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "more")
    with open_source(url) as source:
        assert source.commit == git(repo, "rev-parse", "HEAD") != before


def _fetch(uri: str, version: str | None = None) -> None:
    with open_source(uri, version):
        pass


def test_missing_ref_and_repository_are_clear_errors(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(NotFoundError, match="Git ref 'no-such-branch' does not exist in file://"):
        _fetch(f"file://{repo}", "no-such-branch")
    with pytest.raises(NotFoundError, match="Git ref 'deadbeef' does not exist"):
        _fetch(f"file://{repo}", "deadbeef")
    with pytest.raises(ProjectSpecError, match="Invalid git ref '--upload-pack=x'"):
        _fetch(f"file://{repo}", "--upload-pack=x")
    with pytest.raises(ProjectExecutionError, match=r"git clone failed: .*not .* a git repository"):
        _fetch(f"file://{tmp_path}/absent-repo")

"""Where a project's code comes from: a local folder, or a git repository at a commit.

``URI[#subdirectory]``: a local folder runs in place (its git commit and dirty state are
recorded when it is in a work tree); a git URL (``file://``, ``https://``, ``ssh://``,
``git@host:path``), or a local folder with ``version``, is fetched into a mirror under the
Cairn cache and checked out at ``version`` (default: the remote's HEAD) into a fresh folder
for this run. One code path serves local and remote repositories.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cairn.errors import NotFoundError, ProjectExecutionError, ProjectSpecError
from cairn.projects._cache import cache_root, file_lock

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ProjectSource", "git_state", "open_source", "split_uri"]

GIT_SCHEMES = ("file", "http", "https", "ssh", "git")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
GIT_TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class ProjectSource:
    """The code a run executes and where it came from."""

    uri: str  # as recorded: absolute path or URL, with ``#subdirectory``
    project_dir: Path  # the folder holding the MLproject
    version: str | None = None  # the ref asked for
    commit: str | None = None
    dirty: bool = False
    repo_url: str | None = None

    @property
    def is_git(self) -> bool:
        return self.commit is not None


def split_uri(uri: str) -> tuple[str, str]:
    """``"repo#sub/dir"`` -> ``("repo", "sub/dir")``; the subdirectory may not climb out."""
    base, _, sub = uri.partition("#")
    sub = sub.strip("/")
    if sub and (
        PurePosixPath(sub).is_absolute() or ".." in PurePosixPath(sub).parts or "\\" in sub
    ):
        raise ProjectSpecError(f"Subdirectory {sub!r} of {uri!r} must stay inside the project")
    if not base:
        raise ProjectSpecError(f"Project URI {uri!r} names no folder or repository")
    return base, sub


def _is_git_url(base: str) -> bool:
    """``file://``, ``https://``, ``git+ssh://``, ``git@host:path``: anything but a local path."""
    scheme = urlsplit(base).scheme.lower()
    return scheme in GIT_SCHEMES or "+" in scheme or bool(_SCP_LIKE.match(base))


def _git(*args: str, cwd: Path | None = None) -> str:
    """Run git; failures become ProjectExecutionError carrying git's own message."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env=_git_env(),
            check=False,
        )
    except FileNotFoundError as exc:
        raise ProjectExecutionError("git is not installed: it is needed for git projects") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProjectExecutionError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip()
        raise ProjectExecutionError(f"git {args[0]} failed: {message}")
    return proc.stdout.strip()


def _git_env() -> dict[str, str]:
    # Never prompt for credentials: a run must fail, not hang, on a private repository.
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0"}


def git_state(folder: Path) -> tuple[str, bool, Path] | None:
    """``(commit, dirty, top-level folder)`` of the work tree holding ``folder``, if any."""
    try:
        top = _git("rev-parse", "--show-toplevel", cwd=folder)
        commit = _git("rev-parse", "HEAD", cwd=folder)
        status = _git("status", "--porcelain", "--untracked-files=no", cwd=folder)
    except ProjectExecutionError:
        return None
    return commit, bool(status), Path(top)


def _subdir(root: Path, sub: str, uri: str) -> Path:
    folder = (root / sub).resolve() if sub else root
    if not folder.is_dir():
        raise NotFoundError(f"Project {uri!r} has no folder {sub!r}")
    return folder


@contextlib.contextmanager
def open_source(
    uri: str, version: str | None = None, cwd: Path | None = None
) -> Iterator[ProjectSource]:
    """The project at ``uri`` (at ``version``), ready to run; a git checkout is removed after."""
    base, sub = split_uri(uri)
    if version is not None and (not version.strip() or version.startswith("-")):
        raise ProjectSpecError(f"Invalid git ref {version!r}")
    if _is_git_url(base):
        with _checkout(base, version, sub, uri) as source:
            yield source
        return
    folder = ((cwd or Path.cwd()) / Path(base).expanduser()).resolve()
    if not folder.is_dir():
        raise NotFoundError(f"No project at {folder}: not a folder (or a git URL)")
    state = git_state(folder)
    recorded = f"{folder}#{sub}" if sub else str(folder)
    if version is not None:
        if state is None:
            raise ProjectSpecError(f"--version needs a git repository, and {folder} is not in one")
        # The checkout starts at the work tree's top, so keep the path below it.
        below = folder.relative_to(state[2]).as_posix()
        inner = "/".join(part for part in (below if below != "." else "", sub) if part)
        with _checkout(str(state[2]), version, inner, recorded) as source:
            yield source
        return
    project_dir = _subdir(folder, sub, uri)
    if state is None:
        yield ProjectSource(recorded, project_dir)
        return
    commit, dirty, top = state
    yield ProjectSource(recorded, project_dir, None, commit, dirty, _remote_url(top))


def _remote_url(top: Path) -> str:
    try:
        return _git("config", "--get", "remote.origin.url", cwd=top) or str(top)
    except ProjectExecutionError:
        return str(top)


@contextlib.contextmanager
def _checkout(url: str, version: str | None, sub: str, uri: str) -> Iterator[ProjectSource]:
    """Fetch ``url`` into its cached mirror and check ``version`` out into a temp folder."""
    key = hashlib.sha256(url.encode()).hexdigest()[:20]
    entry = cache_root() / "git" / key
    mirror = entry / "mirror.git"
    with file_lock(entry / "lock"):
        if not (mirror / "HEAD").exists():
            shutil.rmtree(mirror, ignore_errors=True)
            entry.mkdir(parents=True, exist_ok=True)
            _git("clone", "--quiet", "--mirror", "--", url, str(mirror))
        elif not (version and _FULL_SHA.match(version) and _resolve(mirror, version)):
            _git("fetch", "--quiet", "--prune", "--force", "origin", cwd=mirror)
        commit = _resolve(mirror, version or "HEAD")
        if commit is None and version and re.fullmatch(r"[0-9a-f]{7,40}", version):
            # A commit no branch or tag points at is fetched by name where servers allow it.
            with contextlib.suppress(ProjectExecutionError):
                _git("fetch", "--quiet", "origin", version, cwd=mirror)
            commit = _resolve(mirror, version)
    if commit is None:
        raise NotFoundError(
            f"Git ref {version or 'HEAD'!r} does not exist in {url}: give a branch, tag or commit"
        )
    work = Path(tempfile.mkdtemp(prefix=f"checkout-{commit[:12]}-", dir=_checkouts(entry)))
    try:
        _git("clone", "--quiet", "--shared", "--no-checkout", str(mirror), str(work))
        _git("checkout", "--quiet", "--detach", commit, cwd=work)
        yield ProjectSource(uri, _subdir(work, sub, uri), version, commit, False, url)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _checkouts(entry: Path) -> Path:
    folder = entry / "checkouts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _resolve(mirror: Path, ref: str) -> str | None:
    try:
        out = _git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", cwd=mirror
        )
    except ProjectExecutionError:
        return None
    return out or None

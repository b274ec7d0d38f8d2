"""Where projects keep git mirrors and built environments, and the lock that guards each entry."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ENV_CAIRN_HOME", "cache_root", "file_lock"]

ENV_CAIRN_HOME = "CAIRN_HOME"


def cache_root() -> Path:
    """``$CAIRN_HOME`` when set, else ``~/.cache/cairn`` (``$XDG_CACHE_HOME/cairn``)."""
    explicit = os.environ.get(ENV_CAIRN_HOME)
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "cairn").resolve()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held across processes, so two runs never build one entry twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

"""What ``cairn server`` and ``cairn models serve`` share: the socket, Host names, shutdown."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["BACKLOG", "allowed_hosts", "exit_quietly", "listen", "split_names"]

BACKLOG = 2048


def split_names(values: str) -> tuple[str, ...]:
    """``"a, b,"`` -> ``("a", "b")``: a comma-separated option's values."""
    return tuple(value.strip() for value in values.split(",") if value.strip())


def allowed_hosts(host: str, option: str) -> tuple[str, ...]:
    """The names given, plus the one listened on (IP addresses are always answered)."""
    names = split_names(option)
    if host in ("0.0.0.0", "::", ""):
        return (*names, socket.gethostname())
    return (*names, host)


def exit_quietly(_signum: int, _frame: FrameType | None) -> NoReturn:
    """A SIGINT/SIGTERM handler: leave through SystemExit so uvicorn shuts down cleanly."""
    raise SystemExit(0)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket that uvicorn (or each of its workers) serves on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. "
            "Stop the process using that port or pick another with --port."
        ) from exc
    sock.set_inheritable(True)
    return sock

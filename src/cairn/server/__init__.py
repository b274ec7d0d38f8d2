"""The tracking server: an ASGI app speaking MLflow's REST API, built by ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ServerSettings", "create_app"]

if TYPE_CHECKING:
    from cairn.server.app import create_app
    from cairn.server.settings import ServerSettings


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cairn.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from cairn.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(name)

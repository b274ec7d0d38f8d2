"""Route dependencies: the store and client the app factory put in app state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn.server.settings import ServerSettings
from cairn.tracking.client import TrackingClient
from cairn.tracking.stores.sql.store import SqlStore

__all__ = ["Client", "Settings", "Store"]


def _store(request: Request) -> SqlStore:
    store: SqlStore = request.app.state.store
    return store


def _client(request: Request) -> TrackingClient:
    client: TrackingClient = request.app.state.client
    return client


def _settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


Store = Annotated[SqlStore, Depends(_store)]
Client = Annotated[TrackingClient, Depends(_client)]
Settings = Annotated[ServerSettings, Depends(_settings)]

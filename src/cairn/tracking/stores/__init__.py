"""Tracking stores: where runs, params, metrics and tags live (SQL, or REST to a server)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cairn.tracking.stores.base import TrackingStore

__all__ = ["clear_store_cache", "get_store"]

_stores: dict[tuple[str, str], TrackingStore] = {}
_lock = threading.Lock()


def get_store(tracking_uri: str) -> TrackingStore:
    """The store behind a tracking URI, opened once per process (engines and pools are shared)."""
    from cairn._config import resolve_store_location

    location = resolve_store_location(tracking_uri)
    cache_key = (location.uri, location.artifact_root)
    with _lock:
        store = _stores.get(cache_key)
        if store is None:
            if location.kind == "rest":
                from cairn.tracking.stores.rest import RestStore

                store = RestStore(location.uri)
            else:
                from cairn.tracking.stores.sql.store import SqlStore

                store = SqlStore(location.uri, location.artifact_root)
            _stores[cache_key] = store
        return store


def clear_store_cache() -> None:
    """Dispose every cached store (tests and ``set_tracking_uri`` use this)."""
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()

"""Registry stores: SQL in the tracking database, or REST to a tracking server."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cairn.models.registry.stores.base import RegistryStore

__all__ = ["get_registry_store"]


def get_registry_store(tracking_uri: str) -> RegistryStore:
    """The registry behind a tracking URI, over the tracking store's engine or HTTP session.

    The tracking store is opened once per process (``cairn.tracking.stores.get_store``), so the
    registry shares its connection pool and finds its schema already migrated.
    """
    from cairn._config import resolve_store_location
    from cairn.tracking.stores import get_store

    location = resolve_store_location(tracking_uri)
    tracking = get_store(tracking_uri)
    if location.kind == "rest":
        from cairn.models.registry.stores.rest import RestRegistryStore
        from cairn.tracking.stores.rest import RestStore

        assert isinstance(tracking, RestStore)
        return RestRegistryStore(tracking.session)
    from cairn.models.registry.stores.sql import SqlRegistryStore
    from cairn.tracking.stores.sql.store import SqlStore

    assert isinstance(tracking, SqlStore)
    return SqlRegistryStore(tracking.engine)

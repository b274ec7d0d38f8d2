"""Authentication and authorization for ``cairn server --auth``.

``install`` wires it into an app: the users/tokens/permissions endpoints (``routes``) and the
one middleware that decides every request (``middleware``) by the route's rule (``rules``),
over the tables of migration 0005 (``stores.sql``). Passwords are argon2id hashes (``passwords``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cairn.errors import InvalidParameterError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from cairn.server.auth.stores.sql import AuthStore
    from cairn.server.settings import ServerSettings
    from cairn.tracking.stores.sql.store import SqlStore

__all__ = ["ENV_ADMIN_PASSWORD", "ENV_ADMIN_USERNAME", "ensure_admin", "install"]

ENV_ADMIN_USERNAME = "CAIRN_ADMIN_USERNAME"
ENV_ADMIN_PASSWORD = "CAIRN_ADMIN_PASSWORD"


def install(app: FastAPI, settings: ServerSettings, store: SqlStore) -> None:
    """Add the auth endpoints and middleware; refuse to start without an admin."""
    from cairn.server.auth import routes
    from cairn.server.auth.middleware import AuthMiddleware, AuthState
    from cairn.server.auth.stores.sql import AuthStore

    auth_store = AuthStore(store.engine)
    if auth_store.count_admins() == 0:
        raise InvalidParameterError(
            "--auth needs an admin and this store has none: set "
            f"{ENV_ADMIN_USERNAME} and {ENV_ADMIN_PASSWORD}, or run `cairn server --auth` "
            "in a terminal to be asked, or `cairn users create --admin`"
        )
    state = AuthState(auth_store, settings)
    app.state.auth = state
    app.include_router(routes.router)
    app.add_middleware(AuthMiddleware, fastapi_app=app, state=state)


def ensure_admin(store: AuthStore, username: str | None, password: str | None) -> str | None:
    """Create the first admin from the given (or environment) credentials if there is none.

    Returns the name of the admin created, or None if the store already had one.
    """
    if store.count_admins() > 0:
        return None
    username = username or os.environ.get(ENV_ADMIN_USERNAME, "").strip()
    password = password or os.environ.get(ENV_ADMIN_PASSWORD, "")
    if not username or not password:
        raise InvalidParameterError(
            "--auth needs an admin and this store has none: set "
            f"{ENV_ADMIN_USERNAME} and {ENV_ADMIN_PASSWORD}"
        )
    if any(user.username == username for user in store.list_users()):
        store.update_password(username, password)
        store.set_admin(username, True)
    else:
        store.create_user(username, password, is_admin=True)
    return username

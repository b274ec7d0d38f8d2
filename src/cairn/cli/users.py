"""``cairn users``: create, list and delete the users of a server started with ``--auth``.

These work on the tracking store directly (``--backend-store-uri``, else the tracking URI), so
they are for whoever runs the server; over the network, admins use the REST endpoints
(``/api/2.0/mlflow/users/...``). A server notices changes within ``auth_cache_seconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli._output import format_time, print_json, print_table

if TYPE_CHECKING:
    from cairn.server.auth.stores.sql import AuthStore

__all__ = ["open_auth_store", "store_option", "users"]

store_option = click.option(
    "--backend-store-uri",
    metavar="URI",
    help="The server's store: a folder, sqlite:///PATH or postgresql://...  "
    "[default: the tracking URI, else ./.cairn]",
)


def open_auth_store(backend_store_uri: str | None) -> AuthStore:
    """The users and tokens of the store a server uses (its schema brought up to date)."""
    from cairn._config import resolve_store_location
    from cairn.cli.server import _default_store_uri
    from cairn.errors import InvalidParameterError
    from cairn.server.auth.stores.sql import AuthStore

    uri = backend_store_uri or _default_store_uri()
    location = resolve_store_location(uri)
    if location.kind != "sql":
        raise InvalidParameterError(
            f"--backend-store-uri must be a folder, sqlite:/// or postgresql:// URI, got {uri!r}"
        )
    return AuthStore.open(location.uri)


@click.group()
def users() -> None:
    """Create, list and delete users of a server started with --auth."""


@users.command("create")
@click.argument("username")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="CAIRN_NEW_USER_PASSWORD",
    help="The new user's password (asked for if not given; or $CAIRN_NEW_USER_PASSWORD).",
)
@click.option("--admin", is_flag=True, help="Make the user an admin (bypasses permissions).")
@store_option
def create_user(username: str, password: str, admin: bool, backend_store_uri: str | None) -> None:
    """Create user USERNAME."""
    store = open_auth_store(backend_store_uri)
    try:
        user = store.create_user(username, password, is_admin=admin)
    finally:
        store.close()
    role = "admin" if user.is_admin else "user"
    click.echo(f"Created {role} '{user.username}'")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@store_option
def list_users(as_json: bool, backend_store_uri: str | None) -> None:
    """List users."""
    store = open_auth_store(backend_store_uri)
    try:
        found = store.list_users()
    finally:
        store.close()
    if as_json:
        print_json([user.to_json() for user in found])
        return
    print_table(
        ["Username", "Admin", "Created"],
        [(u.username, "yes" if u.is_admin else "", format_time(u.creation_time)) for u in found],
    )


@users.command("delete")
@click.argument("username")
@store_option
def delete_user(username: str, backend_store_uri: str | None) -> None:
    """Delete user USERNAME, their tokens and permissions."""
    store = open_auth_store(backend_store_uri)
    try:
        store.delete_user(username)
    finally:
        store.close()
    click.echo(f"Deleted user '{username}'")

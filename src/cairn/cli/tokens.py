"""``cairn tokens``: create, list and revoke personal API tokens (on the store, as ``users``).

A token is shown once, when created; the store keeps only its hash. Clients send it as
``Authorization: Bearer <token>`` ($CAIRN_TRACKING_TOKEN or $MLFLOW_TRACKING_TOKEN).
"""

from __future__ import annotations

import click

from cairn.cli._output import format_time, print_json, print_table
from cairn.cli.users import open_auth_store, store_option

__all__ = ["tokens"]


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens of a server started with --auth."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="", help="What the token is for (shown in lists).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@store_option
def create_token(username: str, name: str, as_json: bool, backend_store_uri: str | None) -> None:
    """Create a token for USERNAME and print it (only this once)."""
    store = open_auth_store(backend_store_uri)
    try:
        token, secret = store.create_token(username, name)
    finally:
        store.close()
    if as_json:
        print_json({"token": secret, **token.to_json()})
        return
    click.echo(f"Token {token.token_id} for '{username}' (shown only now, keep it secret):")
    click.echo(secret)


@tokens.command("list")
@click.argument("username", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@store_option
def list_tokens(username: str | None, as_json: bool, backend_store_uri: str | None) -> None:
    """List tokens (of USERNAME, or of everyone); never the secrets."""
    store = open_auth_store(backend_store_uri)
    try:
        found = store.list_tokens(username)
    finally:
        store.close()
    if as_json:
        print_json([token.to_json() for token in found])
        return
    print_table(
        ["ID", "User", "Name", "Created", "Revoked"],
        [
            (
                t.token_id,
                t.username,
                t.name,
                format_time(t.creation_time),
                format_time(t.revoked_time) if t.revoked_time else "",
            )
            for t in found
        ],
    )


@tokens.command("revoke")
@click.argument("token_id", type=click.IntRange(min=1))
@store_option
def revoke_token(token_id: int, backend_store_uri: str | None) -> None:
    """Revoke token TOKEN_ID: requests carrying it are refused from then on."""
    store = open_auth_store(backend_store_uri)
    try:
        store.revoke_token(token_id)
    finally:
        store.close()
    click.echo(f"Revoked token {token_id}")

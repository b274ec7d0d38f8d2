"""``cairn models register|list|versions|alias``: the model registry from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli._output import format_time, print_json, print_table

if TYPE_CHECKING:
    from cairn.entities import ModelVersion

__all__ = ["alias", "list_models", "register", "versions"]

_JSON_HELP = "Print JSON for scripts."


def _parse_tags(pairs: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--tag")
        tags[key] = value
    return tags


def _quoted(text: str) -> str:
    """``text`` as a string literal of the search language."""
    return "'" + text.replace("'", "''") + "'"


@click.command("register")
@click.option(
    "-m",
    "--model-uri",
    required=True,
    help="runs:/<run_id>/<path>, an artifact URI (s3://..., models:/...) or a local folder.",
)
@click.option("--name", "-n", required=True, help="The registered model; created if missing.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Version tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def register(model_uri: str, name: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Register a model as the next version of NAME."""
    from cairn.models.registry.client import RegistryClient

    version = RegistryClient().register_model(model_uri, name, _parse_tags(tags))
    if as_json:
        print_json(version)
        return
    click.echo(f"Registered version {version.version} of model '{version.name}'")
    click.echo(f"  source: {version.source}")
    click.echo(f"  load it with models:/{version.name}/{version.version}")


@click.command("list")
@click.option("--filter", "-f", "filter_string", help="e.g. \"name LIKE 'churn%'\"")
@click.option("--max-results", "-n", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def list_models(filter_string: str | None, max_results: int, as_json: bool) -> None:
    """List registered models, by name."""
    from cairn.models.registry.client import RegistryClient

    found = RegistryClient().search_registered_models(filter_string, max_results)
    if as_json:
        print_json({"registered_models": list(found), "next_page_token": found.token})
        return
    rows = []
    for model in found:
        latest = max((v.version for v in model.latest_versions), default=None)
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(model.aliases.items()))
        rows.append(
            (
                model.name,
                "" if latest is None else latest,
                aliases,
                format_time(model.last_updated_timestamp),
                model.description or "",
            )
        )
    more = "+" if found.token else ""
    print_table(
        ["Name", "Latest", "Aliases", "Updated", "Description"],
        rows,
        title=f"Registered models ({len(found)}{more})",
        essential=3,
    )


def _all_versions(name: str) -> list[ModelVersion]:
    from cairn.models.registry.client import RegistryClient

    client = RegistryClient()
    client.get_registered_model(name)  # an unknown model is an error, not an empty table
    found: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(
            f"name = {_quoted(name)}", order_by=["version_number DESC"], page_token=token
        )
        found.extend(page)
        token = page.token
        if not token:
            return found


@click.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def versions(name: str, as_json: bool) -> None:
    """List the versions of registered model NAME, newest first, with their aliases."""
    found = _all_versions(name)
    if as_json:
        print_json({"model_versions": found})
        return
    print_table(
        ["Version", "Aliases", "Created", "Run ID", "Source", "Stage", "Description"],
        [
            (
                v.version,
                ", ".join(v.aliases),
                format_time(v.creation_timestamp),
                v.run_id or "",
                v.source,
                "" if v.current_stage.value == "None" else v.current_stage.value,
                v.description or "",
            )
            for v in found
        ],
        title=f"Versions of {name} ({len(found)})",
        essential=5,
    )


@click.command("alias")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Delete ALIAS instead of setting it.")
def alias(name: str, alias_name: str, version: str | None, delete: bool) -> None:
    """Point ALIAS of model NAME at VERSION, or delete it with --delete."""
    from cairn.models.registry.client import RegistryClient

    client = RegistryClient()
    if delete:
        if version is not None:
            raise click.UsageError("--delete takes no VERSION")
        client.delete_registered_model_alias(name, alias_name)
        click.echo(f"Deleted alias '{alias_name}' of model '{name}'")
        return
    if version is None:
        raise click.UsageError("Give the VERSION the alias should point at (or --delete)")
    client.set_registered_model_alias(name, alias_name, version)
    click.echo(
        f"Alias '{alias_name}' of model '{name}' points at version {version} "
        f"(load it with models:/{name}@{alias_name})"
    )

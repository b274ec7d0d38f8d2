"""``cairn experiments``: create, list, delete, restore."""

from __future__ import annotations

import click

from cairn.cli._output import format_time, print_json, print_table

_VIEWS = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}


@click.group()
def experiments() -> None:
    """Create, list, delete and restore experiments."""


@experiments.command("list")
@click.option("--view", type=click.Choice(list(_VIEWS)), default="active", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_experiments(view: str, as_json: bool) -> None:
    """List experiments."""
    from cairn.tracking.client import TrackingClient

    found = TrackingClient().search_experiments(_VIEWS[view], max_results=50_000)
    if as_json:
        print_json(list(found))
        return
    print_table(
        ["ID", "Name", "Stage", "Created", "Artifact location"],
        [
            (
                e.experiment_id,
                e.name,
                e.lifecycle_stage.value,
                format_time(e.creation_time),
                e.artifact_location,
            )
            for e in found
        ],
    )


@experiments.command("create")
@click.argument("name")
@click.option("--artifact-location", help="Where runs of this experiment keep artifacts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def create_experiment(name: str, artifact_location: str | None, as_json: bool) -> None:
    """Create an experiment called NAME."""
    from cairn.tracking.client import TrackingClient

    experiment_id = TrackingClient().create_experiment(name, artifact_location)
    if as_json:
        print_json({"experiment_id": experiment_id, "name": name})
    else:
        click.echo(f"Created experiment '{name}' with id {experiment_id}")


@experiments.command("delete")
@click.argument("experiment")
def delete_experiment(experiment: str) -> None:
    """Delete EXPERIMENT (a name or an id); it can be restored."""
    from cairn.tracking.client import TrackingClient

    client = TrackingClient()
    experiment_id = client.resolve_experiment_id(experiment)
    client.delete_experiment(experiment_id)
    click.echo(
        f"Deleted experiment {experiment_id} "
        f"(restore with `cairn experiments restore {experiment_id}`)"
    )


@experiments.command("restore")
@click.argument("experiment")
def restore_experiment(experiment: str) -> None:
    """Restore a deleted EXPERIMENT (a name or an id)."""
    from cairn.tracking.client import TrackingClient

    client = TrackingClient()
    experiment_id = client.resolve_experiment_id(experiment)
    client.restore_experiment(experiment_id)
    click.echo(f"Restored experiment {experiment_id}")


@experiments.command("rename")
@click.argument("experiment")
@click.argument("new_name")
def rename_experiment(experiment: str, new_name: str) -> None:
    """Rename EXPERIMENT (a name or an id) to NEW_NAME."""
    from cairn.tracking.client import TrackingClient

    client = TrackingClient()
    experiment_id = client.resolve_experiment_id(experiment)
    client.rename_experiment(experiment_id, new_name)
    click.echo(f"Renamed experiment {experiment_id} to '{new_name}'")

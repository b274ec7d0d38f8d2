"""``cairn runs``: list, show, search, reproduce, delete, restore."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli._output import format_duration, format_time, format_value, print_json, print_table
from cairn.cli.run import data_version_option, finish, parse_params

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cairn.entities import Run

_VIEWS = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}
_MAX_KEY_COLUMNS = 8


def _print_runs(runs: Sequence[Run], title: str) -> None:
    metric_keys = sorted({k for run in runs for k in run.data.metrics})[:_MAX_KEY_COLUMNS]
    param_keys = sorted({k for run in runs for k in run.data.params})[:_MAX_KEY_COLUMNS]
    columns = ["Run ID", "Name", "Status", "Started", "Duration"]
    columns += [f"metrics.{k}" for k in metric_keys] + [f"params.{k}" for k in param_keys]
    rows = []
    for run in runs:
        info = run.info
        row = [info.run_id, info.run_name, info.status.value, format_time(info.start_time)]
        row.append(format_duration(info.start_time, info.end_time))
        row += [
            format_value(run.data.metrics[k]) if k in run.data.metrics else "" for k in metric_keys
        ]
        row += [run.data.params.get(k, "") for k in param_keys]
        rows.append(row)
    print_table(columns, rows, title=title, essential=4)


def _experiment_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "-e",
        "--experiment",
        "experiments",
        multiple=True,
        help="Experiment name or id (repeatable). [default: Default]",
    )(func)
    func = click.option(
        "--view", type=click.Choice(list(_VIEWS)), default="active", show_default=True
    )(func)
    func = click.option(
        "--max-results", "-n", default=100, show_default=True, type=click.IntRange(1, 50_000)
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)
    return func


def _search(
    experiments: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str],
    view: str,
    max_results: int,
    as_json: bool,
) -> None:
    from cairn.tracking.client import TrackingClient

    client = TrackingClient()
    ids = [client.resolve_experiment_id(e) for e in experiments] or ["0"]
    runs = client.search_runs(ids, filter_string, _VIEWS[view], max_results, list(order_by) or None)
    if as_json:
        print_json({"runs": list(runs), "next_page_token": runs.token})
        return
    names = ", ".join(client.get_experiment(i).name for i in ids)
    _print_runs(runs, title=f"Runs in {names} ({len(runs)}{'+' if runs.token else ''})")


@click.group()
def runs() -> None:
    """List, show, search, delete and restore runs."""


@runs.command("list")
@_experiment_options
def list_runs(experiments: tuple[str, ...], view: str, max_results: int, as_json: bool) -> None:
    """List the runs of an experiment, newest first."""
    _search(experiments, None, (), view, max_results, as_json)


@runs.command("search")
@_experiment_options
@click.option(
    "--filter", "-f", "filter_string", help="e.g. \"metrics.mae < 0.3 and params.alpha = '0.5'\""
)
@click.option("--order-by", "-o", multiple=True, help="e.g. 'metrics.mae ASC' (repeatable)")
def search_runs(
    experiments: tuple[str, ...],
    view: str,
    max_results: int,
    as_json: bool,
    filter_string: str | None,
    order_by: tuple[str, ...],
) -> None:
    """Search runs with the filter language, ordered as asked."""
    _search(experiments, filter_string, order_by, view, max_results, as_json)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def show_run(run_id: str, as_json: bool) -> None:
    """Show a run: attributes, params, latest metrics and tags."""
    from cairn.tracking.client import TrackingClient

    run = TrackingClient().get_run(run_id)
    if as_json:
        print_json(run)
        return
    info = run.info
    print_table(
        ["Field", "Value"],
        [
            ("run_id", info.run_id),
            ("name", info.run_name),
            ("experiment_id", info.experiment_id),
            ("status", info.status.value),
            ("lifecycle_stage", info.lifecycle_stage.value),
            ("user", info.user_id),
            ("started", format_time(info.start_time)),
            ("ended", format_time(info.end_time)),
            ("duration", format_duration(info.start_time, info.end_time)),
            ("artifact_uri", info.artifact_uri),
        ],
        title=f"Run {info.run_id}",
    )
    for title, mapping in (
        ("Params", run.data.params),
        ("Metrics", run.data.metrics),
        ("Tags", run.data.tags),
    ):
        if mapping:
            print_table(
                ["Key", "Value"],
                [(k, format_value(mapping[k])) for k in sorted(mapping)],
                title=title,
            )


@runs.command("delete")
@click.argument("run_id")
def delete_run(run_id: str) -> None:
    """Delete a run (it can be restored)."""
    from cairn.tracking.client import TrackingClient

    TrackingClient().delete_run(run_id)
    click.echo(f"Deleted run {run_id} (restore with `cairn runs restore {run_id}`)")


@runs.command("restore")
@click.argument("run_id")
def restore_run(run_id: str) -> None:
    """Restore a deleted run."""
    from cairn.tracking.client import TrackingClient

    TrackingClient().restore_run(run_id)
    click.echo(f"Restored run {run_id}")


@runs.command("reproduce")
@click.argument("run_id")
@click.option(
    "-P",
    "--param",
    "params",
    multiple=True,
    callback=parse_params,
    metavar="KEY=VALUE",
    help="Override a recorded parameter (repeatable).",
)
@click.option("--run-name", help="Name of the new run.")
@click.option(
    "--env-manager", type=click.Choice(["uv", "local"]), help="Instead of the recorded environment."
)
@data_version_option
def reproduce_run(
    run_id: str,
    params: dict[str, str],
    run_name: str | None,
    env_manager: str | None,
    data_versions: dict[str, int],
) -> None:
    """Rerun a project run: recorded source, environment, parameters and table versions.

    Each Delta table the run read is read again at the version it read; --data-version
    URI=N reads another version instead.
    """
    from cairn.projects.reproduce import reproduce

    finish(
        reproduce(
            run_id,
            params,
            run_name=run_name,
            env_manager=env_manager,
            data_versions=data_versions,
        )
    )

"""``cairn lineage``: from a model version or run down to the data commits it was trained on.

``--json`` prints ``cairn.data.trace.Lineage.to_dict()``; its keys are listed in that module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli._output import format_duration, format_time, print_json, print_table
from cairn.cli.data import COMMIT_COLUMNS, commit_rows

if TYPE_CHECKING:
    from cairn.data.trace import Lineage, TableTrace

__all__ = ["lineage"]


def _chain_rows(found: Lineage) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    model = found.model
    if model is not None:
        aliases = f" ({', '.join('@' + a for a in model.aliases)})" if model.aliases else ""
        rows.append(("model", f"{model.name} version {model.version}{aliases}"))
        rows.append(("model source", model.source))
    run = found.run
    if run is None:
        return rows
    info = run.info
    status = f"{info.status.value}, {format_duration(info.start_time, info.end_time)}".rstrip(", ")
    rows.append(("run", f"{info.run_id} ({info.run_name})" if info.run_name else info.run_id))
    rows.append(("run status", f"{status}, started {format_time(info.start_time)}"))
    described = found.to_dict()["run"]
    if described["user"]:
        rows.append(("user", described["user"]))
    if described["reproduces"]:
        rows.append(("reproduces run", described["reproduces"]))
    code = found.code
    commit = code.get("git_commit")
    if commit:
        dirty = " (uncommitted changes)" if code.get("git_dirty") == "true" else ""
        rows.append(("code commit", f"{commit}{dirty}"))
    for key, label in (
        ("git_repo_url", "repository"),
        ("git_version", "git version"),
        ("source_name", "source"),
        ("entry_point", "entry point"),
        ("command", "command"),
    ):
        if code.get(key):
            rows.append((label, str(code[key])))
    for key, label in (
        ("env_manager", "environment"),
        ("env_hash", "environment hash"),
        ("python", "python"),
        ("docker_image", "docker image"),
        ("backend", "backend"),
    ):
        value = found.environment.get(key)
        if value:
            rows.append((label, value))
    return rows


def _print_table_trace(item: TableTrace) -> None:
    table = item.table
    size = f"{table.num_rows:,} rows" if table.num_rows is not None else "rows unknown"
    check = {True: "content unchanged", False: "CONTENT DIFFERS from what the run recorded"}
    parts = [size, f"schema {table.schema_hash}"] if table.schema_hash else [size]
    if item.content_matches is not None:
        parts.append(check[item.content_matches])
    if table.context:
        parts.append(f"context {table.context}")
    verb = "read" if table.role == "input" else "wrote"
    click.echo(f"Run {verb} {table.uri} version {table.version} ({'; '.join(parts)})")
    if item.error:
        click.echo(f"  cannot read the table now: {item.error}")
        return
    rows = commit_rows(item.commits)
    for row, commit in zip(rows, item.commits, strict=True):
        if commit.version == table.version:
            row[0] = f"{commit.version} ←"
    print_table(
        COMMIT_COLUMNS,
        rows,
        title=f"Commits up to version {table.version} of {table.name}",
        essential=3,
    )


@click.command("lineage")
@click.argument("target", metavar="MODEL_URI|RUN_ID")
@click.option(
    "--commits",
    "-n",
    default=5,
    show_default=True,
    type=click.IntRange(0),
    help="Commits to list per table version (the one that made it, then its predecessors).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def lineage(target: str, commits: int, as_json: bool) -> None:
    """Trace a model version or run to its code, parameters, environment and data commits.

    MODEL_URI is models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH.
    """
    from cairn.data.trace import trace

    found = trace(target, commits=commits)
    if as_json:
        print_json(found.to_dict())
        return
    print_table(["Link", "Value"], _chain_rows(found), title=f"Lineage of {target}")
    if found.run is None:
        click.echo(
            "The model version was registered without a run, so there is no recorded "
            "code, parameters or data (register from runs:/<run_id>/<path> to link one)."
        )
        return
    if found.params:
        print_table(
            ["Param", "Value"], sorted(found.params.items()), title="Parameters", essential=2
        )
    inputs = [t for t in found.tables if t.table.role == "input"]
    outputs = [t for t in found.tables if t.table.role != "input"]
    if not found.tables:
        click.echo(
            "The run recorded no table versions (read tables with cairn.data.read_table "
            "inside the run, or record them with cairn.log_input)."
        )
    for item in [*inputs, *outputs]:
        _print_table_trace(item)

"""``cairn data history|show|diff|restore``: versioned Delta tables from the command line.

``--json`` output keys (stable):

    history   {uri, commits: [Commit]}
    show      {table: TableSnapshot.to_dict(), columns: [name], rows: [[value per column]]}
    diff      TableDiff.to_dict(): {uri, from_version, to_version, from_rows, to_rows,
              schema_changes, columns: {name: {from, to}}, shifted, commits: [Commit]}
    restore   {uri, restored_version, version}

A Commit is {version, timestamp_ms, time, operation, user, run_id, parameters, metrics}.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

import click

from cairn.cli._output import format_value, print_json, print_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cairn.data.diff import TableDiff
    from cairn.data.tables import Commit

__all__ = ["commit_rows", "data", "format_commit_time"]

_JSON_HELP = "Print JSON for scripts."
COMMIT_COLUMNS = ["Version", "Time", "Operation", "User", "Run", "Rows added"]


def format_commit_time(ms: int | None) -> str:
    """Local time to the second: several commits often land within a minute."""
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _rows_added(commit: Commit) -> str:
    for key in ("num_added_rows", "num_output_rows", "num_copied_rows"):
        value = commit.metrics.get(key)
        if value is not None:
            return str(value)
    return ""


def commit_rows(commits: Sequence[Commit]) -> list[list[str]]:
    return [
        [
            str(c.version),
            format_commit_time(c.timestamp_ms),
            c.operation,
            c.user or "",
            c.run_id or "",
            _rows_added(c),
        ]
        for c in commits
    ]


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _plain(value: Any) -> Any:
    """A cell as JSON can carry it: dates as ISO text, bytes as hex, decimals as text."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (decimal.Decimal, dt.timedelta)):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@click.group()
def data() -> None:
    """Inspect, compare and restore versions of Delta tables."""


@data.command("history", short_help="List a table's commits, newest first.")
@click.argument("uri")
@click.option(
    "--limit", "-n", default=20, show_default=True, type=click.IntRange(1), help="Newest N commits."
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def history_cmd(uri: str, limit: int, as_json: bool) -> None:
    """List the table's commits, newest first: time, operation, user and the run that made each."""
    from cairn.data.delta import normalize_uri
    from cairn.data.tables import history

    commits = history(uri, limit=limit + 1)
    more = len(commits) > limit
    commits = commits[:limit]
    if as_json:
        print_json({"uri": normalize_uri(uri), "commits": [c.to_dict() for c in commits]})
        return
    print_table(
        COMMIT_COLUMNS,
        commit_rows(commits),
        title=f"History of {normalize_uri(uri)} ({len(commits)}{'+' if more else ''} commits)",
        essential=3,
    )
    if more:
        click.echo(f"Older commits not shown: pass --limit {limit * 2} to see more.")


@data.command("show", short_help="Show a version: size, schema, digest and rows.")
@click.argument("uri")
@click.option("--version", "-v", type=click.IntRange(0), help="Table version. [default: latest]")
@click.option(
    "--limit", "-n", default=10, show_default=True, type=click.IntRange(0), help="Rows to print."
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def show_cmd(uri: str, version: int | None, limit: int, as_json: bool) -> None:
    """Show one version of a table: rows, files, size, schema, digest, time and some rows."""
    from cairn.data import delta
    from cairn.data.tables import table_info

    info = table_info(uri, version)
    rows = delta.head(delta.open_table(info.uri, version=info.version), info.uri, limit)
    columns = rows.column_names
    values = [[_plain(v) for v in row.values()] for row in rows.to_pylist()]
    if as_json:
        print_json({"table": info.to_dict(), "columns": columns, "rows": values})
        return
    print_table(
        ["Field", "Value"],
        [
            ("uri", info.uri),
            ("name", info.name),
            ("version", info.version),
            ("committed", format_commit_time(info.timestamp_ms)),
            ("rows", "" if info.num_rows is None else f"{info.num_rows:,}"),
            ("files", info.num_files),
            ("size", _size(info.size_bytes)),
            ("schema hash", info.schema_hash),
            ("content digest", info.content_digest),
            ("digest", info.digest),
        ],
        title=f"{info.name} version {info.version}",
    )
    print_table(["Column", "Type"], list(info.schema.items()), title="Schema")
    if limit:
        shown = f"{len(values)} of {info.num_rows:,}" if info.num_rows is not None else len(values)
        print_table(
            columns,
            [[format_value(v) if v is not None else "null" for v in row] for row in values],
            title=f"Rows ({shown})",
        )


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_columns(result: TableDiff) -> None:
    """One row per column and version, so the from/to values sit under each other."""
    from rich.console import Console
    from rich.table import Table

    shifted = set(result.shifted)
    stats = ["mean", "std", "min", "max", "nulls"]
    if any(
        s is not None and s.distinct is not None for pair in result.columns.values() for s in pair
    ):
        stats.append("distinct")
    table = Table(title="Columns", header_style="bold")
    for header in ("Column", "Type", "Version", *(s.capitalize() for s in stats), "Shifted"):
        table.add_column(header, no_wrap=header in ("Column", "Shifted"))
    for name, (old, new) in result.columns.items():
        moved = name in shifted
        style = "bold red" if moved else None
        for first, version, side in (
            (True, result.from_version, old),
            (False, result.to_version, new),
        ):
            if first:
                label, kind = name, side.type if side else "—"
            else:
                label = ""
                kind = side.type if side and (old is None or side.type != old.type) else ""
            values = (
                [_number(getattr(side, s)) for s in stats]
                if side
                else ["(absent)"] + [""] * (len(stats) - 1)
            )
            marker = "SHIFTED" if moved and first else ""
            table.add_row(
                label, kind, f"v{version}", *values, marker, style=style, end_section=not first
            )
    Console().print(table)


@data.command("diff", short_help="Compare two versions: schema, rows, statistics, commits.")
@click.argument("uri")
@click.argument("v1", type=click.IntRange(0))
@click.argument("v2", type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def diff_cmd(uri: str, v1: int, v2: int, as_json: bool) -> None:
    """Compare versions V1 and V2: schema, row counts, column statistics, commits in between."""
    from cairn.data.diff import diff

    result = diff(uri, v1, v2)
    if as_json:
        print_json(result.to_dict())
        return
    change = result.to_rows - result.from_rows
    click.echo(f"{result.uri}: version {v1} → {v2}")
    click.echo(f"Rows: {result.from_rows:,} → {result.to_rows:,} ({change:+,})")
    if result.schema_changes:
        print_table(
            ["Column", "Change", "From", "To"],
            [
                (c.column, c.change, c.old_type or "", c.new_type or "")
                for c in result.schema_changes
            ],
            title="Schema changes",
        )
    else:
        click.echo("Schema: unchanged")
    _print_columns(result)
    if result.shifted:
        click.echo(
            f"Shifted columns: {', '.join(result.shifted)} (mean moved by more than one "
            "standard deviation, or spread changed more than twofold)"
        )
    low, high = sorted((v1, v2))
    if result.commits:
        print_table(
            COMMIT_COLUMNS,
            commit_rows(sorted(result.commits, key=lambda c: c.version)),
            title=f"Commits after version {low} up to {high}",
            essential=3,
        )
    else:
        click.echo("No commits in between (the same version).")
    if result.shifted or result.schema_changes:
        click.echo(
            f"To bring back version {low}'s content as a new version: "
            f"cairn data restore {result.uri} --version {low}"
        )


@data.command("restore", short_help="Commit an old version's content as a new version.")
@click.argument("uri")
@click.option("--version", "-v", required=True, type=click.IntRange(0), help="Version to restore.")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def restore_cmd(uri: str, version: int, as_json: bool) -> None:
    """Commit a new version whose content is VERSION's (the versions in between stay readable)."""
    from cairn.data.delta import normalize_uri
    from cairn.data.tables import restore

    new_version = restore(uri, version)
    target = normalize_uri(uri)
    if as_json:
        print_json({"uri": target, "restored_version": version, "version": new_version})
        return
    click.echo(f"Restored {target} to the content of version {version} as version {new_version}")
    click.echo(f"  compare them with: cairn data diff {target} {version} {new_version}")

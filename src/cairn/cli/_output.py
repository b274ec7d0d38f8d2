"""How commands print: rich tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

__all__ = ["format_duration", "format_time", "print_json", "print_table", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=2, allow_nan=False))


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    essential: int | None = None,
) -> None:
    """Print a table; columns past ``essential`` are shown only while they fit the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [
        max([len(column), *(len(row[i]) for row in cells)]) + 3 for i, column in enumerate(columns)
    ]
    keep = list(range(len(columns) if essential is None else min(essential, len(columns))))
    used = sum(widths[i] for i in keep)
    for i in range(len(keep), len(columns)):
        if used + widths[i] > console.width:
            break
        keep.append(i)
        used += widths[i]
    hidden = len(columns) - len(keep)
    caption = (
        f"{hidden} more column(s) hidden: widen the terminal or use --json" if hidden else None
    )
    table = Table(title=title, caption=caption, header_style="bold")
    for i in keep:
        # Ids in the first column are copied by people: keep them whole.
        table.add_column(
            columns[i],
            no_wrap=True,
            overflow="ellipsis",
            min_width=widths[0] - 3 if i == 0 else None,
        )
    for row in cells:
        table.add_row(*(row[i] for i in keep))
    console.print(table)


def format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def format_duration(start_ms: int, end_ms: int | None) -> str:
    if end_ms is None:
        return ""
    seconds = max(0.0, (end_ms - start_ms) / 1000)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)

"""``cairn models predict``: score a file with a model, a chunk of rows at a time.

Only click loads with this module, so ``--help`` stays fast; pandas, pyarrow and the model's
framework load when the command runs.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import click

from cairn.cli import skip_teardown
from cairn.cli._startup import collector_paused, quiet_blas_threads
from cairn.models.table_io import FORMATS, STDIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cairn.models.batch import Progress

__all__ = ["predict"]


@click.command()
@click.option(
    "-m",
    "--model-uri",
    required=True,
    metavar="URI",
    help="The model: a folder, runs:/<run_id>/<path>, models:/<name>/<version> or "
    "models:/<name>@<alias>.",
)
@click.option(
    "-i",
    "--input",
    "input_path",
    required=True,
    metavar="PATH",
    help="File to score: .csv, .parquet or .jsonl (.gz/.bz2/.zst for CSV and JSON lines); "
    "- reads stdin.",
)
@click.option(
    "-o",
    "--output",
    "output_path",
    default=STDIO,
    show_default=True,
    metavar="PATH",
    help="Where the predictions go, in the format its extension names; - writes stdout.",
)
@click.option("--input-format", type=click.Choice(FORMATS), help="Read this format.")
@click.option("--output-format", type=click.Choice(FORMATS), help="Write this format.")
@click.option("--keep-columns", is_flag=True, help="Copy the input columns into the output too.")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=50_000,  # batch.DEFAULT_CHUNK_ROWS, not imported so that --help stays light
    show_default=True,
    help="Rows scored at a time; memory grows with it.",
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def predict(
    model_uri: str,
    input_path: str,
    output_path: str,
    input_format: str | None,
    output_format: str | None,
    keep_columns: bool,
    chunk_size: int,
    no_progress: bool,
) -> None:
    """Score every row of a CSV, Parquet or JSON-lines file with a model.

    Writes a `prediction` column per input row (one column per output for models with
    several), a chunk at a time, so files larger than memory score too. The output file
    appears only once every row is scored. `-` is CSV unless a format option says otherwise.

    \b
    cairn models predict -m runs:/<run_id>/model -i data.parquet -o scores.csv
    cat data.csv | cairn models predict -m models:/churn@champion -i - > scores.csv
    """
    quiet_blas_threads()  # before numpy loads
    from cairn.models.batch import predict_file

    with _progress_bar(enabled=not no_progress) as bar, collector_paused() as resume:

        def on_progress(progress: Progress) -> None:
            if progress.chunks:
                resume()  # the model and its framework are loaded: see collector_paused
            if bar is not None:
                bar(progress)

        rows = predict_file(
            model_uri,
            input_path,
            output_path,
            input_format=input_format,
            output_format=output_format,
            chunk_size=chunk_size,
            keep_columns=keep_columns,
            on_progress=on_progress,
        )
    if output_path != STDIO:
        click.echo(f"Wrote {rows:,} predictions to {output_path}", err=True)
    skip_teardown()  # everything is written and closed


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[Progress], None] | None]:
    """A rich progress bar on stderr, by bytes read; nothing unless stderr is a terminal."""
    if not enabled:
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as ProgressBar

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeRemainingColumn(),
    )
    with ProgressBar(*columns, console=console, transient=True) as bar:
        task = bar.add_task("opening", total=None, rows=0)

        def update(progress: Progress) -> None:
            bar.update(
                task,
                description="loading the model" if progress.chunks == 0 else "scoring",
                completed=progress.bytes_read,
                total=progress.total_bytes,
                rows=progress.rows,
            )

        yield update

"""``cairn artifacts``: list and download what runs stored."""

from __future__ import annotations

import click

from cairn.cli._output import print_json, print_table


@click.group()
def artifacts() -> None:
    """List and download run artifacts."""


@artifacts.command("list")
@click.argument("run_id")
@click.option("--path", "-p", default=None, help="Folder inside the run's artifacts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_artifacts(run_id: str, path: str | None, as_json: bool) -> None:
    """List the artifacts of RUN_ID (one folder level)."""
    from cairn.tracking.client import TrackingClient

    files = TrackingClient().list_artifacts(run_id, path)
    if as_json:
        print_json(files)
        return
    print_table(
        ["Path", "Type", "Size"],
        [
            (f.path, "dir" if f.is_dir else "file", "" if f.file_size is None else f.file_size)
            for f in files
        ],
        title=f"Artifacts of {run_id}" + (f" under {path}" if path else ""),
    )


@artifacts.command("download")
@click.argument("run_id")
@click.option("--path", "-p", default=None, help="File or folder inside the run's artifacts.")
@click.option(
    "--dst", "-d", "dst_path", type=click.Path(file_okay=False), default=None, help="Local folder."
)
def download_artifacts(run_id: str, path: str | None, dst_path: str | None) -> None:
    """Download artifacts of RUN_ID and print where they are."""
    from cairn.tracking.client import TrackingClient

    click.echo(TrackingClient().download_artifacts(run_id, path, dst_path))

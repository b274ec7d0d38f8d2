"""``cairn sync``: upload what was logged while the tracking server was unreachable."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import click

from cairn.cli._output import print_json, print_table

if TYPE_CHECKING:
    from cairn.tracking._spool import FailedOp, ReplayReport, SpoolStatus


def _server_url() -> str:
    from cairn._config import get_tracking_uri, resolve_store_location

    uri = get_tracking_uri()
    location = resolve_store_location(uri)
    if location.kind != "rest":
        raise click.ClickException(
            f"The tracking URI {uri!r} is not a tracking server, so nothing is spooled for it. "
            "Pass the server the runs were logged to: cairn --tracking-uri http://HOST:PORT sync"
        )
    return location.uri


def _when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds).isoformat(timespec="seconds")


def _failed_json(failed: list[FailedOp]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": op.run_id,
            "kind": op.kind,
            "error": op.error,
            "metrics": op.metrics,
            "params": op.params,
            "tags": op.tags,
            "logged_at": _when(op.created),
        }
        for op in failed
    ]


def _print_failed(failed: list[FailedOp]) -> None:
    click.echo(f"{len(failed)} operation(s) were refused by the server and are kept aside:")
    for op in failed:
        click.echo(f"  {op.run_id} {op.kind}: {op.error}")
    click.echo("Fix the cause, then run `cairn sync --retry-failed` to send them again.")


def _show_status(url: str, status: SpoolStatus, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "server": url,
                "spool": status.path,
                "pending_ops": status.pending_ops,
                "oldest": _when(status.oldest),
                "runs": [
                    {
                        "run_id": run.run_id,
                        "server_run_id": run.server_run_id,
                        "ops": run.ops,
                        "metrics": run.metrics,
                        "params": run.params,
                        "tags": run.tags,
                        "artifact_files": run.artifact_files,
                        "oldest": _when(run.oldest),
                    }
                    for run in status.runs
                ],
                "failed": _failed_json(status.failed),
            }
        )
        return
    if status.empty:
        click.echo(f"Nothing waits to be uploaded to {url}.")
    else:
        oldest = _when(status.oldest) or "-"
        rows = [
            (
                run.run_id,
                run.server_run_id or "",
                run.ops,
                run.metrics,
                run.params,
                run.tags,
                run.artifact_files,
                _when(run.oldest) or "",
            )
            for run in status.runs
        ]
        print_table(
            ["Run ID", "Server run ID", "Ops", "Metrics", "Params", "Tags", "Files", "Oldest"],
            rows,
            title=f"{status.pending_ops} operation(s) wait for {url} (oldest {oldest})",
            essential=4,
        )
        click.echo(f"Spool: {status.path}")
    if status.failed:
        _print_failed(status.failed)


def _report_json(url: str, report: ReplayReport) -> dict[str, Any]:
    return {
        "server": url,
        "created_runs": [
            {"offline_run_id": local, "run_id": server} for local, server in report.created_runs
        ],
        "ops": report.ops,
        "metrics": report.metrics,
        "params": report.params,
        "tags": report.tags,
        "run_updates": report.run_updates,
        "artifact_files": report.artifact_files,
        "failed": _failed_json(report.failed),
        "remaining": report.remaining,
        "interrupted": report.interrupted,
    }


def _print_report(url: str, report: ReplayReport) -> None:
    if not (report.ops or report.artifact_files or report.failed):
        if report.interrupted is None:
            click.echo(f"Nothing to upload to {url}.")
    else:
        click.echo(f"Uploaded to {url}:")
        for local, server in report.created_runs:
            click.echo(f"  run {local} -> {server}")
        click.echo(
            f"  {report.ops} operation(s): {report.metrics} metric value(s), "
            f"{report.params} param(s), {report.tags} tag(s), {report.run_updates} run "
            f"update(s); {report.artifact_files} artifact file(s)"
        )
    if report.failed:
        _print_failed(report.failed)


@click.command()
@click.option("--status", "show_status", is_flag=True, help="Show what waits; upload nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--retry-failed", is_flag=True, help="Send operations the server refused before again."
)
def sync(show_status: bool, as_json: bool, retry_failed: bool) -> None:
    """Upload runs, params, metrics and tags logged while the tracking server was unreachable.

    They wait in a local spool (~/.cairn/spool, or $CAIRN_SPOOL_DIR) per server; Cairn also
    uploads them by itself the next time it reaches the server. Nothing is sent twice.
    """
    from cairn.tracking._spool import Spool, SpoolStatus, spool_path

    url = _server_url()
    path = spool_path(url)
    if show_status:
        spool = Spool.open_existing(path)
        try:
            status = spool.status() if spool is not None else SpoolStatus(str(path))
        finally:
            if spool is not None:
                spool.close()
        _show_status(url, status, as_json)
        return
    if not path.exists():
        if as_json:
            print_json({"server": url, "ops": 0, "remaining": 0})
        else:
            click.echo(f"Nothing to upload to {url}.")
        return
    from cairn.tracking.stores.rest import RestStore

    store = RestStore(url, background_replay=False, offline_logging=True)
    try:
        if retry_failed:
            store.requeue_failed()
        report = store.replay()
    finally:
        store.close()
    if as_json:
        print_json(_report_json(url, report))
    else:
        _print_report(url, report)
    if report.interrupted is not None:
        raise click.ClickException(
            f"{report.interrupted}. {report.remaining} operation(s) stay in the spool; run "
            "`cairn sync` again once the server is reachable"
        )
    if report.failed:
        raise click.ClickException("Some operations were refused by the server (see above)")

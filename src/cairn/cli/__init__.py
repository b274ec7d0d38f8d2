"""The ``cairn`` command line: thin commands over the Python API, errors mapped in one place."""

from __future__ import annotations

import importlib
from typing import Any

import click

from cairn import __version__

__all__ = ["cli", "main", "skip_teardown"]

# Subcommand groups load on first use so ``cairn --help`` stays fast.
_COMMANDS = {
    "experiments": (
        "cairn.cli.experiments",
        "experiments",
        "Create, list, delete and restore experiments.",
    ),
    "run": ("cairn.cli.run", "run", "Run a project (folder or git repository) as a recorded run."),
    "runs": ("cairn.cli.runs", "runs", "List, show, search, reproduce, delete and restore runs."),
    "artifacts": ("cairn.cli.artifacts", "artifacts", "List and download run artifacts."),
    "server": ("cairn.cli.server", "server", "Serve the MLflow-compatible tracking API."),
    "models": (
        "cairn.cli.models",
        "models",
        "Score, serve, package and register models.",
    ),
    "sync": ("cairn.cli.sync", "sync", "Upload what was logged while the server was unreachable."),
    "tokens": ("cairn.cli.tokens", "tokens", "Create, list and revoke API tokens (server --auth)."),
    "users": ("cairn.cli.users", "users", "Create, list and delete users (server --auth)."),
    "data": ("cairn.cli.data", "data", "Show, diff and restore versions of Delta tables."),
    "lineage": (
        "cairn.cli.lineage",
        "lineage",
        "Trace a model or run to its code, parameters and data commits.",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module, attr, _ = _COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in sorted(_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from cairn.errors import CairnError

        try:
            return super().invoke(ctx)
        except CairnError as exc:
            raise click.ClickException(exc.message) from exc


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cairn")
@click.option(
    "--tracking-uri",
    envvar="CAIRN_TRACKING_URI",
    help="Store to use: a folder, sqlite:///PATH or postgresql://... [default: ./.cairn]",
)
def cli(tracking_uri: str | None) -> None:
    """Cairn: track, compare and reproduce machine learning runs."""
    if tracking_uri:
        from cairn import _config

        _config.set_tracking_uri(tracking_uri)


_skip_teardown = False


def skip_teardown() -> None:
    """Let ``main`` end the process without the interpreter's teardown after this command.

    For commands that loaded a large stack (pandas, pyarrow, scikit-learn) and closed their
    output: freeing it module by module adds ~0.4 s to a command that took ~1.5 s. Only
    ``main`` acts on it, so commands run in-process (tests, ``CliRunner``) keep their process.
    """
    global _skip_teardown
    _skip_teardown = True


def main() -> None:
    try:
        cli.main(prog_name="cairn")
    except SystemExit as exc:
        if _skip_teardown and exc.code in (0, None):
            _exit_now()
        raise


def _exit_now() -> None:
    """Exit 0 after what the normal shutdown does that matters: threads, atexit, flushing."""
    import atexit
    import os
    import sys
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        return  # someone still works: leave it to the normal shutdown, which waits for them
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a reader that went away (a closed pipe): what we wrote is lost
        os._exit(1)
    os._exit(0)

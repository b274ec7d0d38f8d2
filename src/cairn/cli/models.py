"""``cairn models``: package, score, serve and register models.

The subcommands live in modules named after what they do and load on first use, so
``cairn models --help`` does not import pandas or scikit-learn.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["models"]

# name -> (module, attribute, one-line help)
_SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "predict": ("cairn.cli.model_predict", "predict", "Score a CSV, Parquet or JSON-lines file."),
    "serve": ("cairn.cli.model_serve", "serve", "Serve a model over REST (/invocations)."),
    "dockerfile": (
        "cairn.cli.model_serve",
        "dockerfile",
        "Write a Dockerfile and context that serve a model.",
    ),
    "register": ("cairn.cli.model_registry", "register", "Register a model version."),
    "list": ("cairn.cli.model_registry", "list_models", "List registered models."),
    "versions": ("cairn.cli.model_registry", "versions", "List a registered model's versions."),
    "alias": ("cairn.cli.model_registry", "alias", "Set or delete a model version alias."),
}


class _LazyModelsGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _SUBCOMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in sorted(_SUBCOMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyModelsGroup)
def models() -> None:
    """Package, score, serve and register models."""

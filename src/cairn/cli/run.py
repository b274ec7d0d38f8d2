"""``cairn run``: run a project's entry point as a recorded run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cairn.projects.runner import ProjectRun

_KILLED_EXIT = 130


def parse_params(
    _ctx: click.Context, _param: click.Parameter, items: tuple[str, ...]
) -> dict[str, str]:
    """``-P key=value`` options as a mapping; a malformed one is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'-P'")
        out[key.strip()] = value
    return out


def parse_data_versions(
    _ctx: click.Context, _param: click.Parameter, items: tuple[str, ...]
) -> dict[str, int]:
    """``--data-version URI=N`` options as {normalized URI: N}; a malformed one is a usage error."""
    from cairn.data.pins import parse_pin
    from cairn.errors import InvalidParameterError

    pins: dict[str, int] = {}
    for item in items:
        try:
            uri, version = parse_pin(item)
        except InvalidParameterError as exc:
            raise click.BadParameter(exc.message, param_hint="'--data-version'") from None
        pins[uri] = version
    return pins


def data_version_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--data-version",
        "data_versions",
        multiple=True,
        callback=parse_data_versions,
        metavar="URI=VERSION",
        help="Read this Delta table at this version: cairn.data.read_table(URI) without a "
        "version reads it (repeatable).",
    )(func)


def finish(result: ProjectRun) -> None:
    """Exit as the run ended: 0 FINISHED, 1 FAILED, 130 KILLED (the message says why)."""
    if result.succeeded:
        return
    message = f"Run {result.run_id} {result.status.value}"
    if result.reason:
        message += f": {result.reason}"
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(_KILLED_EXIT if result.status.value == "KILLED" else 1)


@click.command("run")
@click.argument("uri")
@click.option(
    "-e", "--entry-point", default="main", show_default=True, help="Entry point or a .py/.sh file."
)
@click.option(
    "-P",
    "--param",
    "params",
    multiple=True,
    callback=parse_params,
    metavar="KEY=VALUE",
    help="A parameter value (repeatable).",
)
@click.option("--experiment-name", envvar="CAIRN_EXPERIMENT_NAME", help="Created when missing.")
@click.option("--experiment-id", envvar="CAIRN_EXPERIMENT_ID")
@click.option("--run-name")
@click.option("--version", "version", metavar="GIT_REF", help="Branch, tag or commit to run.")
@click.option(
    "--env-manager",
    type=click.Choice(["uv", "local"]),
    help="uv: build python_env.yaml (cached); local: this interpreter. "
    "[default: uv when the project has a python_env]",
)
@click.option(
    "--backend", type=click.Choice(["local", "spark"]), default="local", show_default=True
)
@click.option(
    "--backend-config", metavar="FILE", help="Backend settings: a JSON file or JSON text."
)
@data_version_option
def run(
    uri: str,
    entry_point: str,
    params: dict[str, str],
    experiment_name: str | None,
    experiment_id: str | None,
    run_name: str | None,
    version: str | None,
    env_manager: str | None,
    backend: str,
    backend_config: str | None,
    data_versions: dict[str, int],
) -> None:
    """Run a project (a folder or git repository, URI[#subdirectory]) as a recorded run.

    \b
    cairn run . -P alpha=0.5
    cairn run https://github.com/org/repo#training --version v1.2 -e evaluate
    cairn run . --backend spark --backend-config spark.json
    """
    from cairn.projects.runner import run as run_project

    if experiment_name and experiment_id:
        raise click.UsageError("Give --experiment-name or --experiment-id, not both")
    finish(
        run_project(
            uri,
            entry_point,
            params,
            version=version,
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            run_name=run_name,
            env_manager=env_manager,
            backend=backend,
            backend_config=backend_config,
            data_pins=data_versions,
        )
    )

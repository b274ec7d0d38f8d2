"""Rerun a recorded project run: same source and commit, environment, parameters and data.

The table versions the run read (its recorded Delta inputs) are pinned for the new job, so
its ``cairn.data.read_table(uri)`` calls read what the original read, not the latest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import InvalidStateError, NotFoundError
from cairn.projects import record
from cairn.projects.environments import (
    PythonEnvSpec,
    cached_environment,
    environment_hash,
    uv_environment,
)
from cairn.projects.runner import (
    EnvironmentPlan,
    ProjectRun,
    announcer,
    plan_environment,
    run,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cairn.entities import Run
    from cairn.projects.spec import ProjectSpec
    from cairn.tracking.client import TrackingClient

__all__ = ["reproduce"]


def _read(client: TrackingClient, run_id: str, path: str) -> str | None:
    """A text artifact of the run, None when it has none at ``path``."""
    with tempfile.TemporaryDirectory(prefix="cairn-reproduce-") as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except NotFoundError:
            return None
        return Path(local).read_text(encoding="utf-8")


def recorded_environment(
    invocation: record.Invocation, packages: str | None, announce: Callable[[str], None]
) -> Callable[[ProjectSpec], EnvironmentPlan]:
    """The environment the run used: still cached under its hash, or rebuilt from its lock."""

    def plan(project: ProjectSpec) -> EnvironmentPlan:
        if invocation.env_manager != "uv" or invocation.env_hash is None:
            return plan_environment(project, invocation.env_manager, announce)
        cached = cached_environment(invocation.env_hash)
        if cached is not None:
            return EnvironmentPlan("uv", lambda: cached, cached.hash, dict(cached.spec))
        if not packages or not invocation.python:
            announce(
                f"environment {invocation.env_hash} is no longer cached and the run recorded "
                "no package list: building python_env.yaml afresh"
            )
            return plan_environment(project, "uv", announce)
        # Exactly the versions the run had, whatever the requirements now resolve to.
        locked = PythonEnvSpec(
            invocation.python,
            dependencies=tuple(line for line in packages.splitlines() if line.strip()),
        )
        directory = project.directory
        return EnvironmentPlan(
            "uv",
            lambda: uv_environment(locked, directory, announce=announce),
            environment_hash(locked, directory),
            locked.to_dict(),
        )

    return plan


def _written_by(run_id: str, uri: str, versions: set[int]) -> set[int]:
    """Which of these versions of the table were committed by the run itself."""
    from cairn.data.tables import history

    latest = history(uri, 1)[0].version
    commits = history(uri, max(latest - min(versions) + 1, 1))
    return {c.version for c in commits if c.run_id == run_id and c.version in versions}


def recorded_pins(run: Run, announce: Callable[[str], None]) -> dict[str, int]:
    """Table URI -> the version the run read; the newest one when it read several.

    A version the run committed itself and then read back is not pinned: the new run reads
    its own write, not the old run's.
    """
    from cairn.data.lineage import table_inputs

    run_id = run.info.run_id
    read: dict[str, set[int]] = {}
    for table in table_inputs(run):
        if table.role == "input":
            read.setdefault(table.uri, set()).add(table.version)
    pins = {}
    for uri, versions in read.items():
        own = _written_by(run_id, uri, versions)
        if own:
            announce(
                f"run {run_id} read {uri} at version(s) "
                f"{', '.join(map(str, sorted(own)))} that it wrote itself: not pinned"
            )
        external = versions - own
        if not external:
            continue
        pins[uri] = max(external)
        if len(external) > 1:
            announce(
                f"run {run_id} read {uri} at versions "
                f"{', '.join(map(str, sorted(external)))}: pinning the newest, {pins[uri]} "
                "(reads that name a version read that version anyway)"
            )
    return pins


def reproduce(
    run_id: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    run_name: str | None = None,
    env_manager: str | None = None,
    tracking_uri: str | None = None,
    echo: bool = True,
    data_versions: Mapping[str, int] | None = None,
) -> ProjectRun:
    """Run again what run ``run_id`` ran, as a new run tagged ``cairn.project.reproduces``.

    Args:
        run_id: a run started by ``cairn run`` (it holds ``project/invocation.json``).
        parameters: values that override the recorded parameters.
        run_name: the new run's name.
        env_manager: ``local`` to use this interpreter instead of the recorded environment.
        tracking_uri: where both runs live; the process's tracking URI otherwise.
        echo: copy the command's output to this process's stdout/stderr.
        data_versions: table URI -> version, overriding (or adding to) the versions of the
            tables the run read, which are pinned for the new job.
    """
    from cairn.data.delta import normalize_uri
    from cairn.tracking.client import TrackingClient

    announce = announcer(echo)
    client = TrackingClient(tracking_uri)
    original = client.get_run(run_id)
    text = _read(client, run_id, record.INVOCATION_ARTIFACT)
    if text is None:
        raise InvalidStateError(
            f"Run '{run_id}' was not started by `cairn run`: it has no "
            f"{record.INVOCATION_ARTIFACT} to reproduce it from"
        )
    invocation = record.Invocation.from_json(text, run_id)
    if invocation.commit is None:
        announce(f"run {run_id} recorded no git commit: running {invocation.uri} as it is now")
    elif invocation.dirty:
        announce(
            f"run {run_id} ran with uncommitted changes; reproducing commit "
            f"{invocation.commit[:12]} without them"
        )
    pins = recorded_pins(original, announce)
    for uri, version in (data_versions or {}).items():
        pins[normalize_uri(uri)] = version
    for uri, version in sorted(pins.items()):
        announce(f"reading {uri} at version {version}")
    environment = None
    if env_manager is None:
        packages = _read(client, run_id, record.PACKAGES_ARTIFACT)
        environment = recorded_environment(invocation, packages, announce)
    return run(
        invocation.uri,
        invocation.entry_point,
        {**invocation.parameters, **(parameters or {})},
        version=invocation.commit,
        experiment_id=original.info.experiment_id,
        run_name=run_name,
        env_manager=env_manager,
        backend=invocation.backend,
        backend_config=invocation.backend_config,
        tracking_uri=client.tracking_uri,
        echo=echo,
        reproduces=run_id,
        environment=environment,
        data_pins=pins,
    )

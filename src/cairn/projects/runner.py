"""Run a project: fetch it, check its parameters, prepare its environment, record, execute.

Everything that can be checked is checked before a run exists (the MLproject, the entry
point, parameter types, the git ref, the backend config, a Docker engine), so bad input
leaves nothing behind. From the moment the run exists, it always ends: FINISHED, FAILED
(with ``cairn.failure_reason``, also when the environment cannot be built) or KILLED.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cairn.entities import LifecycleStage, RunStatus, RunTag
from cairn.errors import CairnError, InvalidParameterError, InvalidStateError, ProjectSpecError
from cairn.projects import record
from cairn.projects.backends import Launch, Outcome, get_backend, load_backend_config
from cairn.projects.environments import (
    Environment,
    PythonEnvSpec,
    environment_hash,
    local_environment,
    uv_environment,
)
from cairn.projects.parameters import localize, resolve_parameters
from cairn.projects.sources import open_source
from cairn.projects.spec import load_project

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from cairn.projects.spec import ProjectSpec
    from cairn.tracking.client import TrackingClient

__all__ = [
    "ENV_MANAGERS",
    "TAG_DATA_PINS",
    "EnvironmentPlan",
    "ProjectRun",
    "announcer",
    "check_data_pins",
    "plan_environment",
    "run",
]

ENV_MANAGERS = ("uv", "local")
TAG_DATA_PINS = "cairn.data.pins"  # JSON {table URI: version}: the versions the job's reads used


@dataclass(frozen=True, slots=True)
class ProjectRun:
    """A finished project run: its id and how it ended."""

    run_id: str
    experiment_id: str
    status: RunStatus
    exit_code: int | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.FINISHED


@dataclass(frozen=True, slots=True)
class EnvironmentPlan:
    """An environment chosen (and its cache key known) but not yet built."""

    manager: str
    prepare: Callable[[], Environment]
    hash: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)


class _Terminated(BaseException):
    """SIGTERM arrived before the command started."""


def announcer(echo: bool) -> Callable[[str], None]:
    """Print Cairn's own progress lines (``cairn: ...``) to stderr, unless ``echo`` is off."""

    def announce(message: str) -> None:
        if echo:
            print(f"cairn: {message}", file=sys.stderr, flush=True)

    return announce


def plan_environment(
    project: ProjectSpec, env_manager: str | None, announce: Callable[[str], None]
) -> EnvironmentPlan:
    """The environment ``project`` declares, or the one asked for; validated, not built."""
    if project.docker_env is not None:
        if env_manager == "local":
            announce("--env-manager local: running the docker_env project on this interpreter")
        else:
            from cairn.projects.docker import check_engine, docker_environment

            check_engine(project.docker_env.image)
            docker_env = project.docker_env
            return EnvironmentPlan("docker", lambda: docker_environment(docker_env))
    if env_manager not in (None, *ENV_MANAGERS):
        raise ProjectSpecError(
            f"Unknown environment manager {env_manager!r}; use {' or '.join(ENV_MANAGERS)}"
        )
    if env_manager == "local" or (env_manager is None and project.python_env is None):
        return EnvironmentPlan("local", local_environment)
    if project.python_env is None:
        raise ProjectSpecError(
            f"Project {project.directory} declares no python_env.yaml for uv to build; "
            "add one, or run with --env-manager local"
        )
    spec = PythonEnvSpec.load(project.python_env)
    directory = project.directory
    return EnvironmentPlan(
        "uv",
        lambda: uv_environment(spec, directory, announce=announce),
        environment_hash(spec, directory),
        spec.to_dict(),
    )


def child_tracking_uri(uri: str) -> str:
    """``uri`` as the command sees it from another working directory: absolute."""
    scheme = urlsplit(uri).scheme.lower()
    if not scheme or len(scheme) == 1:
        return str(Path(uri).expanduser().resolve())
    if scheme == "file":
        return str(Path(urlsplit(uri).path).resolve())
    if scheme == "sqlite" and ":///" in uri:
        path = uri.split(":///", 1)[1]
        if path and path != ":memory:" and not path.startswith("/"):
            return f"sqlite:///{Path(path).resolve()}"
    return uri


def check_data_pins(pins: Mapping[str, int] | None) -> dict[str, int]:
    """Pins with normalized URIs, each table version checked to exist before a run is made."""
    if not pins:
        return {}
    from cairn.data import delta

    checked: dict[str, int] = {}
    for uri, version in pins.items():
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidParameterError(
                f"The pinned version of {uri} must be a non-negative integer, got {version!r}"
            )
        target = delta.normalize_uri(uri)
        delta.open_table(target, version=version)  # TableNotFoundError / TableVersionError
        checked[target] = version
    return checked


def _experiment_id(
    client: TrackingClient, experiment_name: str | None, experiment_id: str | None
) -> str:
    if experiment_name is not None and experiment_id is not None:
        raise ProjectSpecError("Give an experiment name or an experiment id, not both")
    if experiment_name is not None:
        found = client.get_experiment_by_name(experiment_name)
        if found is None:
            return client.create_experiment(experiment_name)
        experiment = found
    else:
        experiment = client.get_experiment(experiment_id or "0")
    if experiment.lifecycle_stage is LifecycleStage.DELETED:
        raise InvalidStateError(
            f"Experiment '{experiment.name}' is deleted; restore it with "
            f"`cairn experiments restore {experiment.experiment_id}`"
        )
    return experiment.experiment_id


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM raises instead of ending the process, so the run can still be marked KILLED."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _system_tags() -> dict[str, str]:
    from cairn.tracking._environment import system_tags

    # The project's source replaces the calling script's (that is the cairn CLI).
    return {
        k: v
        for k, v in system_tags().items()
        if not k.startswith(("mlflow.source", "cairn.source"))
    }


def _set_tags(client: TrackingClient, run_id: str, tags: Mapping[str, str]) -> None:
    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def _end(client: TrackingClient, run_id: str, outcome: Outcome) -> None:
    if outcome.reason is not None:
        _set_tags(client, run_id, record.failure_tags(outcome.reason, outcome.exit_code))
    elif outcome.exit_code is not None:
        _set_tags(client, run_id, {record.TAG_EXIT_CODE: str(outcome.exit_code)})
    client.set_terminated(run_id, outcome.status)


def run(
    uri: str,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    *,
    version: str | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    backend: str = "local",
    backend_config: str | Path | Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
    echo: bool = True,
    reproduces: str | None = None,
    environment: Callable[[ProjectSpec], EnvironmentPlan] | None = None,
    data_pins: Mapping[str, int] | None = None,
) -> ProjectRun:
    """Run an entry point of the project at ``uri`` as a new run, and wait for it to end.

    Args:
        uri: a local folder, or a git repository (path, ``file://``, ``https://``, ...), with
            an optional ``#subdirectory``.
        entry_point: an entry point of the MLproject, or a ``.py``/``.sh`` file by name.
        parameters: values for the entry point's parameters (others become ``--key value``).
        version: git branch, tag or commit to check out.
        experiment_name: the experiment of the run (created when missing).
        experiment_id: or the experiment's id; default experiment otherwise.
        run_name: a readable name for the run.
        env_manager: ``uv`` (build python_env.yaml) or ``local`` (this interpreter);
            default uv when the project declares a python_env, else local.
        backend: ``local`` or ``spark``.
        backend_config: the backend's settings: a JSON file, JSON text or a mapping.
        tracking_uri: where to record the run; the process's tracking URI otherwise.
        echo: copy the command's output to this process's stdout/stderr while it runs.
        reproduces: the run this one reproduces (tagged on the new run).
        environment: chooses the environment instead of the project's declaration.
        data_pins: table URI -> version; the job's ``cairn.data.read_table(uri)`` calls
            without an explicit version read these versions (``$CAIRN_DATA_PINS``).

    Returns:
        The run's id and final status; the command's failure is a FAILED status, not an error.

    Raises:
        ProjectSpecError: the project, entry point, parameters or configuration are invalid.
        TableNotFoundError, TableVersionError: a pinned table or version does not exist.
        NotFoundError: the folder, subdirectory or git ref does not exist.
        ProjectExecutionError: the run could not start (marked FAILED when it was created).
    """
    from cairn.tracking.client import TrackingClient, make_param

    announce = announcer(echo)
    cwd = Path.cwd()
    client = TrackingClient(tracking_uri)
    chosen_backend = get_backend(backend, load_backend_config(backend_config))
    with open_source(uri, version, cwd) as source:
        project = load_project(source.project_dir)
        entry = project.entry_point(entry_point)
        given = dict(parameters or {})
        values = resolve_parameters(entry, given, cwd=cwd, project_dir=source.project_dir)
        plan = (
            environment(project)
            if environment is not None
            else plan_environment(project, env_manager, announce)
        )
        if chosen_backend.name == "spark" and plan.manager == "docker":
            raise ProjectSpecError("docker_env projects run with the local backend only")
        pins = check_data_pins(data_pins)
        experiment = _experiment_id(client, experiment_name, experiment_id)
        command = entry.render(values)
        invocation = record.Invocation(
            uri=source.uri,
            entry_point=entry.name,
            # Only what was given: defaults are re-read from the project when reproducing.
            parameters={k: values[k] for k in given},
            command=command,
            env_manager=plan.manager,
            backend=chosen_backend.name,
            version=source.version,
            commit=source.commit,
            dirty=source.dirty,
            env_hash=plan.hash,
            backend_config=chosen_backend.config_record(),
            reproduces=reproduces,
        )
        tags = {
            **_system_tags(),
            **record.run_tags(
                source,
                entry.name,
                command,
                plan.manager,
                plan.hash,
                chosen_backend.name,
                reproduces,
            ),
        }
        if pins:
            tags[TAG_DATA_PINS] = json.dumps(pins, sort_keys=True)
        created = client.create_run(experiment, tags=tags, run_name=run_name)
        run_id = created.info.run_id
        announce(f"run {run_id} ({created.info.run_name}) in experiment {experiment}: {command}")
        try:
            with _terminate_raises():
                client.log_batch(run_id, params=[make_param(k, v) for k, v in values.items()])
                env = plan.prepare()
                _record_environment(client, run_id, env, invocation)
                with tempfile.TemporaryDirectory(prefix="cairn-inputs-") as inputs:
                    command = entry.render(localize(entry, values, Path(inputs)))
                    launch = Launch(
                        run_id=run_id,
                        command=command,
                        project_dir=source.project_dir,
                        environment=env,
                        env=_child_env(env, run_id, experiment, client.tracking_uri, pins),
                        tracking_uri=child_tracking_uri(client.tracking_uri),
                        docker=project.docker_env if env.manager == "docker" else None,
                        echo=echo,
                    )
                    outcome = chosen_backend.execute(launch, client)
        except (KeyboardInterrupt, _Terminated) as exc:
            name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
            _end(client, run_id, Outcome(RunStatus.KILLED, None, f"Stopped by {name}"))
            if isinstance(exc, _Terminated):
                raise SystemExit(128 + signal.SIGTERM) from None
            raise
        except CairnError as exc:
            _end(client, run_id, Outcome(RunStatus.FAILED, None, exc.message))
            exc.message = f"Run {run_id} failed: {exc.message}"
            exc.args = (exc.message,)
            raise
        except BaseException as exc:
            _end(client, run_id, Outcome(RunStatus.FAILED, None, f"{type(exc).__name__}: {exc}"))
            raise
        _end(client, run_id, outcome)
    announce(
        f"run {run_id} {outcome.status.value}" + (f": {outcome.reason}" if outcome.reason else "")
    )
    return ProjectRun(run_id, experiment, outcome.status, outcome.exit_code, outcome.reason)


def _child_env(
    env: Environment,
    run_id: str,
    experiment_id: str,
    tracking_uri: str,
    data_pins: Mapping[str, int] | None = None,
) -> dict[str, str]:
    from cairn._config import ENV_TRACKING_URI
    from cairn.data.pins import PINS_ENV, encode_pins
    from cairn.tracking import fluent

    base = {
        **os.environ,
        fluent.ENV_RUN_ID: run_id,
        fluent.ENV_EXPERIMENT_ID: experiment_id,
        ENV_TRACKING_URI: child_tracking_uri(tracking_uri),
        # The child logs into the run but leaves ending it to us (we see its exit status).
        fluent.ENV_RUN_MANAGED: "true",
        # Output reaches the console and the log artifact as it is written.
        "PYTHONUNBUFFERED": "1",
    }
    base.pop(fluent.ENV_EXPERIMENT_NAME, None)
    if data_pins:
        base[PINS_ENV] = encode_pins(data_pins)
    return env.child_env(base)


def _record_environment(
    client: TrackingClient, run_id: str, env: Environment, invocation: record.Invocation
) -> None:
    import json
    from dataclasses import replace

    _set_tags(client, run_id, record.environment_tags(env))
    files = {record.INVOCATION_ARTIFACT: replace(invocation, python=env.python).to_json()}
    if env.packages:
        files[record.PACKAGES_ARTIFACT] = env.packages
    if env.spec:
        files[record.ENVIRONMENT_SPEC_ARTIFACT] = json.dumps(env.spec, indent=2)
    with tempfile.TemporaryDirectory(prefix="cairn-record-") as tmp:
        for name, text in files.items():
            path = Path(tmp, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        client.log_artifacts(run_id, tmp)  # one upload for all of them

"""Trace a model back to its data: model version → run → code, parameters, environment →
the table versions the run read → the commits that produced them.

``trace(target)`` takes ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
``models:/<name>/latest``, ``runs:/<run_id>/<path>`` or a bare run id, and returns a
``Lineage`` whose ``to_dict()`` keys are the stable ``cairn lineage --json`` output:

    target        what was asked for, as given
    model         {name, version, aliases, source, run_id, creation_timestamp} or null
    run           {run_id, run_name, experiment_id, status, user, start_time, end_time,
                   reproduces} or null (a model version registered without a run)
    code          {source_name, source_type, git_commit, git_repo_url, git_dirty, git_version,
                   entry_point, command}: null where the run did not record it
    environment   {env_manager, env_hash, python, docker_image, backend}: likewise
    params        the run's parameters
    tables        one per table version the run recorded (inputs first): the TableInput keys
                  (uri, version, role, name, digest, num_rows, schema_hash, content_digest,
                  context), plus content_matches (the table's version today still has the
                  recorded content: true/false, null when it cannot be read), error (why the
                  table could not be read, else null) and commits (the commits up to and
                  including the version, newest first: Commit.to_dict() keys)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.errors import CairnError, InvalidParameterError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cairn.data.lineage import TableInput
    from cairn.data.tables import Commit
    from cairn.entities import ModelVersion, Run

__all__ = ["DEFAULT_COMMITS", "Lineage", "TableTrace", "trace", "trace_table"]

DEFAULT_COMMITS = 5

# Where a run keeps what made it (project runs use the cairn.project.* names, scripts the rest).
_CODE_TAGS = {
    "source_name": ("mlflow.source.name",),
    "source_type": ("mlflow.source.type",),
    "git_commit": ("mlflow.source.git.commit",),
    "git_repo_url": ("mlflow.source.git.repoURL",),
    "git_dirty": ("cairn.source.git.dirty",),
    "git_version": ("cairn.source.git.version",),
    "entry_point": ("mlflow.project.entryPoint",),
    "command": ("cairn.project.command",),
}
_ENVIRONMENT_TAGS = {
    "env_manager": ("mlflow.project.env",),
    "env_hash": ("cairn.project.env_hash",),
    "python": ("cairn.project.python", "cairn.python_version"),
    "docker_image": ("mlflow.docker.image.name",),
    "backend": ("mlflow.project.backend",),
}
_REPRODUCES_TAG = "cairn.project.reproduces"
_USER_TAG = "mlflow.user"


@dataclass(frozen=True, slots=True)
class TableTrace:
    """A table version a run recorded, and the commits that led to it."""

    table: TableInput
    commits: tuple[Commit, ...] = ()
    content_matches: bool | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.table.to_dict(),
            "content_matches": self.content_matches,
            "error": self.error,
            "commits": [c.to_dict() for c in self.commits],
        }


@dataclass(frozen=True, slots=True)
class Lineage:
    """The chain from a model version (or a run) down to the data commits it was trained on."""

    target: str
    model: ModelVersion | None
    run: Run | None
    tables: tuple[TableTrace, ...] = ()
    code: Mapping[str, str | None] = field(default_factory=dict)
    environment: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.run.data.params) if self.run is not None else {}

    def to_dict(self) -> dict[str, Any]:
        model = None
        if self.model is not None:
            model = {
                "name": self.model.name,
                "version": self.model.version,
                "aliases": list(self.model.aliases),
                "source": self.model.source,
                "run_id": self.model.run_id,
                "creation_timestamp": self.model.creation_timestamp,
            }
        run = None
        if self.run is not None:
            info = self.run.info
            run = {
                "run_id": info.run_id,
                "run_name": info.run_name,
                "experiment_id": info.experiment_id,
                "status": info.status.value,
                "user": self.run.data.tags.get(_USER_TAG) or info.user_id,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "reproduces": self.run.data.tags.get(_REPRODUCES_TAG),
            }
        return {
            "target": self.target,
            "model": model,
            "run": run,
            "code": dict(self.code),
            "environment": dict(self.environment),
            "params": self.params,
            "tables": [t.to_dict() for t in self.tables],
        }


def _pick(tags: Mapping[str, str], names: Mapping[str, tuple[str, ...]]) -> dict[str, str | None]:
    return {
        key: next((tags[name] for name in candidates if tags.get(name)), None)
        for key, candidates in names.items()
    }


def _model_version(uri: str, tracking_uri: str | None) -> ModelVersion:
    from cairn.models.registry.client import RegistryClient
    from cairn.models.uri import parse_model_uri

    parsed = parse_model_uri(uri)
    assert parsed.name is not None
    client = RegistryClient(tracking_uri)
    if parsed.alias is not None:
        return client.get_model_version_by_alias(parsed.name, parsed.alias)
    if parsed.version == "latest":
        versions = client.get_latest_versions(parsed.name)
        if not versions:
            raise NotFoundError(f"Registered model '{parsed.name}' has no versions")
        return max(versions, key=lambda v: int(v.version))
    if parsed.version is None or not parsed.version.isdigit():
        raise InvalidParameterError(
            f"Bad model URI {uri!r}: the version must be a number or 'latest'"
        )
    return client.get_model_version(parsed.name, parsed.version)


def _run_id_of(target: str) -> str:
    if target.startswith("runs:"):
        from cairn.models.uri import parse_model_uri

        run_id = parse_model_uri(target).run_id
        assert run_id is not None
        return run_id
    if not target or any(c in target for c in "/:@ \t\n"):
        raise InvalidParameterError(
            f"Cannot trace {target!r}: give models:/<name>/<version>, models:/<name>@<alias>, "
            "runs:/<run_id>/<path> or a run id"
        )
    return target


def trace_table(table: TableInput, limit: int = DEFAULT_COMMITS) -> TableTrace:
    """The recorded version's commits (up to ``limit``, newest first) and a content check.

    A table that moved, was deleted or cleaned up is not an error here: the trace keeps what
    the run recorded and says why the table could not be read.
    """
    from cairn.data import delta
    from cairn.data.snapshot import describe
    from cairn.data.tables import _commit, _uri

    try:
        uri = _uri(table.uri)
        latest = delta.open_table(uri)
        newer = latest.version() - table.version
        if newer < 0:
            raise NotFoundError(
                f"{uri} has no version {table.version} (its latest is {latest.version()}): "
                "the table was replaced since the run read it"
            )
        entries = delta.commit_history(latest, newer + max(limit, 1)) if limit > 0 else []
        commits = tuple(
            _commit(entry) for entry in entries if int(entry["version"]) <= table.version
        )[:limit]
        matches = None
        if table.content_digest:
            snapshot = describe(delta.open_table(uri, version=table.version), uri)
            matches = snapshot.content_digest == table.content_digest
    except CairnError as exc:
        return TableTrace(table, error=exc.message)
    return TableTrace(table, commits, matches)


def trace(
    target: str,
    *,
    commits: int = DEFAULT_COMMITS,
    tracking_uri: str | None = None,
) -> Lineage:
    """Follow ``target`` down to the table commits its run was trained on.

    Args:
        target: ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
            ``models:/<name>/latest``, ``runs:/<run_id>/<path>`` or a run id.
        commits: how many commits to list per table version (the one that made the version,
            then its predecessors).
        tracking_uri: the store to read; default the process's tracking URI.

    Raises ``NotFoundError`` for an unknown model, version, alias or run.
    """
    from cairn.data.lineage import table_inputs
    from cairn.tracking.client import TrackingClient

    if isinstance(commits, bool) or not isinstance(commits, int) or commits < 0:
        raise InvalidParameterError(f"commits must be a non-negative integer, got {commits!r}")
    target = str(target).strip()
    model = None
    if target.startswith("models:"):
        model = _model_version(target, tracking_uri)
        if not model.run_id:
            return Lineage(target, model, None)
        run_id = model.run_id
    else:
        run_id = _run_id_of(target)
    try:
        run = TrackingClient(tracking_uri).get_run(run_id)
    except NotFoundError as exc:
        if model is None:
            raise
        raise NotFoundError(
            f"{target} (version {model.version} of '{model.name}') was made by run '{run_id}', "
            f"which is gone from the tracking store: {exc.message}"
        ) from exc
    tags = run.data.tags
    return Lineage(
        target,
        model,
        run,
        tables=tuple(trace_table(t, commits) for t in table_inputs(run)),
        code=_pick(tags, _CODE_TAGS),
        environment=_pick(tags, _ENVIRONMENT_TAGS),
    )

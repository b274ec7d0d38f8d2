"""The offline spool: logging operations kept on disk while the tracking server is unreachable.

One SQLite file per server URL under ``$CAIRN_SPOOL_DIR`` (default ``~/.cairn/spool``), in WAL
mode with ``synchronous=FULL``, so an operation acknowledged to the caller survives the process
being killed. Each operation keeps its request id and its place in line; ``replay`` sends them
oldest first and deletes one only after the server acknowledged it. Run creation and batches
carry their request id to the server, which applies each at most once, so a replay cut short
and started again duplicates nothing.

A run created offline gets an ``offline-<hex>`` id. Table ``runs`` maps it, durably, to the id
the server gives it on replay; artifacts logged to it wait in a folder beside the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cairn.errors import CairnError, NotFoundError, RequestLimitExceededError, UnavailableError
from cairn.tracking._wire import run_info_from_json, run_info_to_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cairn.entities import RunInfo, RunStatus

__all__ = [
    "CREATE_RUN",
    "DELETE_TAG",
    "ENV_SPOOL_DIR",
    "LOG_BATCH",
    "LOG_INPUTS",
    "OFFLINE_PREFIX",
    "UPDATE_RUN",
    "FailedOp",
    "ReplayReport",
    "RunBacklog",
    "Spool",
    "SpoolStatus",
    "SpooledOp",
    "default_spool_dir",
    "is_offline_id",
    "new_offline_id",
    "replay",
    "spool_path",
    "upload_folder_files",
]

ENV_SPOOL_DIR = "CAIRN_SPOOL_DIR"
OFFLINE_PREFIX = "offline-"
PARENT_RUN_TAG = "mlflow.parentRunId"

CREATE_RUN = "create_run"
LOG_BATCH = "log_batch"
UPDATE_RUN = "update_run"
DELETE_TAG = "delete_tag"
LOG_INPUTS = "log_inputs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    metrics INTEGER NOT NULL DEFAULT 0,
    params INTEGER NOT NULL DEFAULT 0,
    tags INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_run_id ON ops (run_id);
CREATE TABLE IF NOT EXISTS runs (
    local_id TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    server_id TEXT,
    server_artifact_uri TEXT,
    created REAL NOT NULL,
    synced REAL
);
CREATE INDEX IF NOT EXISTS runs_server_id ON runs (server_id);
CREATE TABLE IF NOT EXISTS failed (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    metrics INTEGER NOT NULL DEFAULT 0,
    params INTEGER NOT NULL DEFAULT 0,
    tags INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    error TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""

_OP_COLUMNS = "seq, request_id, run_id, kind, body, metrics, params, tags, created"


def default_spool_dir() -> Path:
    explicit = os.environ.get(ENV_SPOOL_DIR)
    return Path(explicit).expanduser() if explicit else Path.home() / ".cairn" / "spool"


def spool_path(base_url: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """The spool database of one tracking server: a readable slug plus a hash of its URL."""
    url = base_url.rstrip("/")
    parts = urlsplit(url)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{parts.netloc}{parts.path}").strip("-")[:60]
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    folder = Path(directory) if directory is not None else default_spool_dir()
    return folder / f"{slug or 'server'}-{digest}.db"


def new_offline_id() -> str:
    return f"{OFFLINE_PREFIX}{uuid.uuid4().hex}"


def is_offline_id(run_id: str) -> bool:
    return run_id.startswith(OFFLINE_PREFIX)


@dataclass(frozen=True, slots=True)
class SpooledOp:
    """One logging call waiting for the server, in the order it was made."""

    seq: int
    request_id: str
    run_id: str
    kind: str
    body: dict[str, Any]
    metrics: int
    params: int
    tags: int
    created: float


@dataclass(frozen=True, slots=True)
class FailedOp:
    """An operation the server refused for good (a param conflict, a deleted run); kept."""

    run_id: str
    kind: str
    error: str
    created: float
    failed_at: float
    metrics: int = 0
    params: int = 0
    tags: int = 0


@dataclass(slots=True)
class RunBacklog:
    """What waits in the spool for one run."""

    run_id: str
    server_run_id: str | None
    ops: int = 0
    metrics: int = 0
    params: int = 0
    tags: int = 0
    oldest: float | None = None
    artifact_files: int = 0


@dataclass(slots=True)
class SpoolStatus:
    """Everything waiting in one spool, per run, plus the operations the server refused."""

    path: str
    runs: list[RunBacklog] = field(default_factory=list)
    failed: list[FailedOp] = field(default_factory=list)

    @property
    def pending_ops(self) -> int:
        return sum(run.ops for run in self.runs)

    @property
    def oldest(self) -> float | None:
        times = [run.oldest for run in self.runs if run.oldest is not None]
        return min(times) if times else None

    @property
    def empty(self) -> bool:
        return not any(run.ops or run.artifact_files for run in self.runs)


@dataclass(slots=True)
class ReplayReport:
    """What one replay uploaded, what the server refused, and what is left."""

    created_runs: list[tuple[str, str]] = field(default_factory=list)
    ops: int = 0
    metrics: int = 0
    params: int = 0
    tags: int = 0
    run_updates: int = 0
    artifact_files: int = 0
    failed: list[FailedOp] = field(default_factory=list)
    interrupted: str | None = None
    remaining: int = 0


def _op(row: tuple[Any, ...]) -> SpooledOp:
    seq, request_id, run_id, kind, body, metrics, params, tags, created = row
    return SpooledOp(
        seq, request_id, run_id, kind, json.loads(body), metrics, params, tags, created
    )


class Spool:
    """The durable queue of one server's pending operations; safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._server_ids: dict[str, str] = {}  # mappings never change once made

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r})"

    @classmethod
    def open_existing(cls, path: str | os.PathLike[str]) -> Spool | None:
        return cls(path) if Path(path).exists() else None

    @property
    def artifacts_root(self) -> Path:
        return self.path.with_suffix(".artifacts")

    def artifact_dir(self, local_id: str) -> Path:
        return self.artifacts_root / local_id

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (and synced to disk) before returning."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- writing --------------------------------------------------------------------------------

    @staticmethod
    def _insert_op(
        conn: sqlite3.Connection,
        kind: str,
        run_id: str,
        body: dict[str, Any],
        counts: tuple[int, int, int],
    ) -> None:
        conn.execute(
            "INSERT INTO ops (request_id, run_id, kind, body, metrics, params, tags, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(body.get("request_id") or uuid.uuid4().hex),
                run_id,
                kind,
                json.dumps(body, allow_nan=False),
                *counts,
                time.time(),
            ),
        )

    def append(
        self,
        kind: str,
        run_id: str,
        body: dict[str, Any],
        counts: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        """Queue one operation (``counts``: metrics, params, tags); on disk when this returns."""
        with self._tx() as conn:
            self._insert_op(conn, kind, run_id, body, counts)

    def add_offline_run(
        self, info: RunInfo, create_body: dict[str, Any], tag_count: int = 0
    ) -> None:
        """Record a run created offline together with the operation that creates it."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO runs (local_id, info, created) VALUES (?, ?, ?)",
                (info.run_id, json.dumps(run_info_to_json(info)), time.time()),
            )
            self._insert_op(conn, CREATE_RUN, info.run_id, create_body, (0, 0, tag_count))

    def ack(self, op: SpooledOp) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM ops WHERE seq = ?", (op.seq,))

    def ack_created(self, op: SpooledOp, server_id: str, server_artifact_uri: str) -> None:
        """The server created the run: map its offline id and drop the operation, atomically."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET server_id = ?, server_artifact_uri = ?, synced = ? "
                "WHERE local_id = ?",
                (server_id, server_artifact_uri, time.time(), op.run_id),
            )
            conn.execute("DELETE FROM ops WHERE seq = ?", (op.seq,))
        self._server_ids[op.run_id] = server_id

    def fail(self, op: SpooledOp, error: str) -> FailedOp:
        """Move an operation the server refused for good out of the queue, keeping why."""
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO failed "
                f"({_OP_COLUMNS}, error, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    op.seq,
                    op.request_id,
                    op.run_id,
                    op.kind,
                    json.dumps(op.body, allow_nan=False),
                    op.metrics,
                    op.params,
                    op.tags,
                    op.created,
                    error,
                    now,
                ),
            )
            conn.execute("DELETE FROM ops WHERE seq = ?", (op.seq,))
        return FailedOp(op.run_id, op.kind, error, op.created, now, op.metrics, op.params, op.tags)

    def requeue_failed(self) -> int:
        """Put refused operations back in line, in their original order; returns how many."""
        with self._tx() as conn:
            moved = conn.execute(
                f"INSERT INTO ops ({_OP_COLUMNS}) SELECT {_OP_COLUMNS} FROM failed "
                "WHERE seq NOT IN (SELECT seq FROM ops)"
            ).rowcount
            conn.execute("DELETE FROM failed")
        return int(moved)

    def update_local_run(
        self,
        local_id: str,
        status: RunStatus | None,
        end_time: int | None,
        run_name: str | None,
    ) -> RunInfo | None:
        """Apply a spooled update to the local copy of an offline run's info; None if unknown."""
        with self._tx() as conn:
            row = conn.execute("SELECT info FROM runs WHERE local_id = ?", (local_id,)).fetchone()
            if row is None:
                return None
            data = json.loads(row[0])
            if status is not None:
                data["status"] = status.value
                data["end_time"] = end_time if status.is_terminated else None
            if run_name:
                data["run_name"] = run_name
            conn.execute(
                "UPDATE runs SET info = ? WHERE local_id = ?", (json.dumps(data), local_id)
            )
        return run_info_from_json(data)

    # -- reading --------------------------------------------------------------------------------

    def next_op(self, after_seq: int = 0) -> SpooledOp | None:
        rows = self._query(
            f"SELECT {_OP_COLUMNS} FROM ops WHERE seq > ? ORDER BY seq LIMIT 1", (after_seq,)
        )
        return _op(rows[0]) if rows else None

    def pending_count(self) -> int:
        return int(self._query("SELECT count(*) FROM ops")[0][0])

    def has_pending(self, run_id: str) -> bool:
        """Whether operations for this run (by offline or server id) wait in line."""
        rows = self._query(
            "SELECT 1 FROM ops WHERE run_id = ?1 "
            "OR run_id IN (SELECT local_id FROM runs WHERE server_id = ?1) "
            "OR run_id IN (SELECT server_id FROM runs WHERE local_id = ?1) LIMIT 1",
            (run_id,),
        )
        return bool(rows)

    def server_id(self, local_id: str) -> str | None:
        known = self._server_ids.get(local_id)
        if known is not None:
            return known
        rows = self._query("SELECT server_id FROM runs WHERE local_id = ?", (local_id,))
        if rows and rows[0][0]:
            self._server_ids[local_id] = rows[0][0]
            return str(rows[0][0])
        return None

    def server_artifact_uri(self, local_id: str) -> str | None:
        rows = self._query("SELECT server_artifact_uri FROM runs WHERE local_id = ?", (local_id,))
        return str(rows[0][0]) if rows and rows[0][0] else None

    def local_run_info(self, local_id: str) -> RunInfo | None:
        rows = self._query("SELECT info FROM runs WHERE local_id = ?", (local_id,))
        return run_info_from_json(json.loads(rows[0][0])) if rows else None

    def creation_failure(self, local_id: str) -> str | None:
        """Why the server refused to create an offline run, if it did."""
        rows = self._query(
            "SELECT error FROM failed WHERE run_id = ? AND kind = ? ORDER BY seq LIMIT 1",
            (local_id, CREATE_RUN),
        )
        return str(rows[0][0]) if rows else None

    def artifact_backlog(self) -> dict[str, list[Path]]:
        """Files logged to offline runs and not uploaded yet, by offline run id."""
        backlog: dict[str, list[Path]] = {}
        root = self.artifacts_root
        if not root.is_dir():
            return backlog
        for folder in sorted(root.iterdir()):
            if folder.is_dir():
                files = sorted(p for p in folder.rglob("*") if p.is_file())
                if files:
                    backlog[folder.name] = files
        return backlog

    def has_backlog(self) -> bool:
        """Operations or artifact files still to upload."""
        return self.pending_count() > 0 or bool(self.artifact_backlog())

    def status(self) -> SpoolStatus:
        status = SpoolStatus(str(self.path))
        runs: dict[str, RunBacklog] = {}
        rows = self._query(
            "SELECT ops.run_id, runs.server_id, count(*), sum(metrics), sum(params), sum(tags), "
            "min(ops.created) FROM ops LEFT JOIN runs ON runs.local_id = ops.run_id "
            "GROUP BY ops.run_id ORDER BY min(ops.seq)"
        )
        for run_id, server_id, ops, metrics, params, tags, oldest in rows:
            runs[run_id] = RunBacklog(run_id, server_id, ops, metrics, params, tags, oldest)
        for local_id, files in self.artifact_backlog().items():
            backlog = runs.get(local_id)
            if backlog is None:
                backlog = runs[local_id] = RunBacklog(local_id, self.server_id(local_id))
            backlog.artifact_files = len(files)
        status.runs = list(runs.values())
        status.failed = [
            FailedOp(run_id, kind, error, created, failed_at, metrics, params, tags)
            for run_id, kind, error, created, failed_at, metrics, params, tags in self._query(
                "SELECT run_id, kind, error, created, failed_at, metrics, params, tags "
                "FROM failed ORDER BY seq"
            )
        ]
        return status


# -- replay -----------------------------------------------------------------------------------


def _rewrite_parent_tag(spool: Spool, tags: Any) -> None:
    """A child run started offline names its parent by offline id; use the server's id."""
    for tag in tags or []:
        value = tag.get("value", "")
        if tag.get("key") == PARENT_RUN_TAG and is_offline_id(value):
            tag["value"] = spool.server_id(value) or value


def _transient(error: CairnError) -> bool:
    """Worth trying again later: the server is away or asks to slow down (not 413: too big)."""
    if isinstance(error, UnavailableError):
        return True
    return isinstance(error, RequestLimitExceededError) and error.http_status == 429


def _server_target(spool: Spool, run_id: str) -> str | None:
    return spool.server_id(run_id) if is_offline_id(run_id) else run_id


def replay(
    spool: Spool,
    send: Callable[[str, dict[str, Any]], dict[str, Any]],
    upload: Callable[[str, list[Path], Path], int],
) -> ReplayReport:
    """Send every queued operation, oldest first, then the artifacts of offline runs.

    Args:
        spool: the queue.
        send: performs one operation (kind, JSON body) against the server and returns the
            response body; raises Cairn's errors.
        upload: uploads files (under a local folder) to a server artifact URI; returns how many.

    Stops early, leaving the rest queued, when the server is unreachable or rate-limits.
    """
    report = ReplayReport()
    last = 0
    try:
        while (op := spool.next_op(last)) is not None:
            last = op.seq
            _replay_op(spool, op, send, report)
        for local_id, files in spool.artifact_backlog().items():
            uri = spool.server_artifact_uri(local_id)
            if uri is None:
                continue  # its run is not on the server yet
            try:
                report.artifact_files += upload(uri, files, spool.artifact_dir(local_id))
            except CairnError as exc:
                if _transient(exc):
                    raise
                now = time.time()
                report.failed.append(FailedOp(local_id, "artifacts", exc.message, now, now))
    except CairnError as exc:
        if not _transient(exc):
            raise
        report.interrupted = exc.message
    report.remaining = spool.pending_count()
    return report


def _replay_op(
    spool: Spool,
    op: SpooledOp,
    send: Callable[[str, dict[str, Any]], dict[str, Any]],
    report: ReplayReport,
) -> None:
    body = dict(op.body)
    if op.kind != CREATE_RUN:
        target = _server_target(spool, op.run_id)
        if target is None:
            reason = spool.creation_failure(op.run_id) or "its creation is not in the spool"
            report.failed.append(
                spool.fail(op, f"Run '{op.run_id}' was never created on the server: {reason}")
            )
            return
        body["run_id"] = target
    _rewrite_parent_tag(spool, body.get("tags"))
    try:
        result = send(op.kind, body)
    except CairnError as exc:
        if _transient(exc):
            raise  # stop here; this operation and the ones after it stay queued
        if not (op.kind == DELETE_TAG and isinstance(exc, NotFoundError)):
            report.failed.append(spool.fail(op, exc.message))
            return
        # A tag already gone is what deleting it wanted.
    else:
        if op.kind == CREATE_RUN:
            info = run_info_from_json(result["run"]["info"])
            spool.ack_created(op, info.run_id, info.artifact_uri)
            report.created_runs.append((op.run_id, info.run_id))
            report.ops += 1
            report.tags += op.tags
            return
    spool.ack(op)
    report.ops += 1
    report.metrics += op.metrics
    report.params += op.params
    report.tags += op.tags
    report.run_updates += int(op.kind == UPDATE_RUN)


def upload_folder_files(files: list[Path], folder: Path, put: Callable[[Path, str], None]) -> int:
    """Upload each file under ``folder`` by its relative path, deleting it once stored."""
    done = 0
    for path in files:
        if not path.is_file():
            continue  # another replay uploaded it meanwhile
        put(path, path.relative_to(folder).as_posix())
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        done += 1
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()
    return done

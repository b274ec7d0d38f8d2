"""The SQL schema of the tracking store (the Alembic migrations build exactly this)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

if TYPE_CHECKING:
    from sqlalchemy.sql.compiler import SQLCompiler

__all__ = [
    "ValuePrefix",
    "api_tokens",
    "client_requests",
    "datasets",
    "experiment_permissions",
    "experiment_tags",
    "experiments",
    "latest_metrics",
    "logged_model_metrics",
    "logged_model_params",
    "logged_model_tags",
    "logged_models",
    "metadata",
    "metrics",
    "model_permissions",
    "model_version_tags",
    "model_versions",
    "params",
    "registered_model_aliases",
    "registered_model_tags",
    "registered_models",
    "run_input_tags",
    "run_inputs",
    "run_logged_models",
    "runs",
    "tags",
    "users",
]

# Names let migrations and reflection agree across SQLite and PostgreSQL.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("artifact_location", sa.String(1000), nullable=False),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False, server_default="active"),
    sa.Column("creation_time", sa.BigInteger, nullable=True),
    sa.Column("last_update_time", sa.BigInteger, nullable=True),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_uuid", sa.String(32), primary_key=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(250), nullable=False, server_default=""),
    sa.Column("user_id", sa.String(256), nullable=False, server_default=""),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
    sa.Column("deleted_time", sa.BigInteger, nullable=True),
    sa.Column("artifact_uri", sa.String(1000), nullable=False),
    sa.Index(None, "experiment_id", "start_time"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column(
        "run_uuid",
        sa.String(32),
        sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column(
        "run_uuid",
        sa.String(32),
        sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

VALUE_PREFIX = 200


class ValuePrefix(FunctionElement[str]):
    """The first ``VALUE_PREFIX`` characters of a param or tag value, ordered by code point on
    every database. The (key, value) indexes hold this, not the value: PostgreSQL refuses btree
    entries over ~2.7 kB, and values reach 8,000 characters. Constants are inlined so a query's
    expression matches the index's."""

    name = "cairn_value_prefix"
    type = sa.String()
    inherit_cache = True


@compiles(ValuePrefix)
def _value_prefix_default(element: ValuePrefix, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"substr({compiler.process(column, **kw)}, 1, {VALUE_PREFIX})"


@compiles(ValuePrefix, "postgresql")
def _value_prefix_postgresql(element: ValuePrefix, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    # COLLATE on the argument, not the result: part of the expression, so reflection (and
    # the migrations test) sees it.
    return f'substr({compiler.process(column, **kw)} COLLATE "C", 1, {VALUE_PREFIX})'


# Sorting runs by a param or tag walks these in value order; listing the keys skips along them.
sa.Index("ix_params_key_value", params.c.key, ValuePrefix(params.c.value))
sa.Index("ix_tags_key_value", tags.c.key, ValuePrefix(tags.c.value))

# Full history: one row per logged value. NaN is stored as NULL (SQLite cannot hold NaN).
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "run_uuid",
        sa.String(32),
        sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Index(None, "run_uuid", "key", "step"),
)

# The value at the highest (step, timestamp) per run and key: what search filters and sorts on.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column(
        "run_uuid",
        sa.String(32),
        sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Index(None, "key", "value"),
)

# Idempotency keys of client requests (offline replay, retries): a request applied once is
# never applied again. ``run_uuid`` is the run a create request made.
client_requests = sa.Table(
    "client_requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("run_uuid", sa.String(32), nullable=True),
    sa.Column("created_time", sa.BigInteger, nullable=False),
)

# Datasets a run read (MLflow's dataset inputs; Delta table versions later), deduplicated per
# experiment by (name, digest).
datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_uuid", sa.String(32), primary_key=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("source_type", sa.String(36), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("schema", sa.Text, nullable=True),
    sa.Column("profile", sa.Text, nullable=True),
    sa.UniqueConstraint("experiment_id", "name", "digest"),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column(
        "run_uuid",
        sa.String(32),
        sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "dataset_uuid",
        sa.String(32),
        sa.ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
)

run_input_tags = sa.Table(
    "run_input_tags",
    metadata,
    sa.Column("run_uuid", sa.String(32), primary_key=True),
    sa.Column("dataset_uuid", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(500), nullable=False),
    sa.ForeignKeyConstraint(
        ["run_uuid", "dataset_uuid"],
        ["run_inputs.run_uuid", "run_inputs.dataset_uuid"],
        ondelete="CASCADE",
    ),
)

# MLflow 3 logged models: a model's own record, beside the run that produced it. Artifacts live
# under the experiment (``<experiment artifacts>/models/<model_id>/artifacts``).
logged_models = sa.Table(
    "logged_models",
    metadata,
    sa.Column("model_id", sa.String(40), primary_key=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("artifact_location", sa.String(1000), nullable=False),
    sa.Column("creation_timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("last_updated_timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False, server_default="active"),
    sa.Column("model_type", sa.String(500), nullable=True),
    sa.Column("source_run_id", sa.String(32), nullable=True),
    sa.Column("status_message", sa.String(1000), nullable=True),
    sa.Index(None, "experiment_id", "name"),
    sa.Index(None, "source_run_id"),
)

logged_model_tags = sa.Table(
    "logged_model_tags",
    metadata,
    sa.Column(
        "model_id",
        sa.String(40),
        sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

logged_model_params = sa.Table(
    "logged_model_params",
    metadata,
    sa.Column(
        "model_id",
        sa.String(40),
        sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

# Metric values logged against a model (NaN stored as NULL, as in ``metrics``).
logged_model_metrics = sa.Table(
    "logged_model_metrics",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id",
        sa.String(40),
        sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("run_uuid", sa.String(32), nullable=True),
    sa.Column("dataset_name", sa.String(500), nullable=True),
    sa.Column("dataset_digest", sa.String(64), nullable=True),
    sa.Index(None, "model_id", "key", "step"),
)

# Models a run read (direction 'input') or produced ('output', at a step).
run_logged_models = sa.Table(
    "run_logged_models",
    metadata,
    sa.Column(
        "run_uuid",
        sa.String(32),
        sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "model_id",
        sa.String(40),
        sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("direction", sa.String(8), primary_key=True),
    sa.Column("step", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index(None, "model_id"),
)

# The model registry. Children key on ``registered_model_id``, not the name, so renaming a model
# touches one row. ``next_version`` hands out version numbers: an UPDATE ... RETURNING on it
# serialises concurrent registrations, and deleted numbers are never handed out again.
registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("registered_model_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
    sa.Column("last_updated_timestamp", sa.BigInteger, nullable=False),
    sa.Column("description", sa.String(5000), nullable=True),
    sa.Column("next_version", sa.Integer, nullable=False, server_default="1"),
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column(
        "registered_model_id",
        sa.Integer,
        sa.ForeignKey("registered_models.registered_model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# ``source`` is where the files are, as registered; ``storage_location`` what a ``models:/<id>``
# source (a logged model) resolved to when the version was made.
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column(
        "registered_model_id",
        sa.Integer,
        sa.ForeignKey("registered_models.registered_model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
    sa.Column("last_updated_timestamp", sa.BigInteger, nullable=False),
    sa.Column("description", sa.String(5000), nullable=True),
    sa.Column("user_id", sa.String(256), nullable=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("storage_location", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("run_link", sa.String(500), nullable=True),
    sa.Column("model_id", sa.String(40), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("status_message", sa.String(500), nullable=True),
    sa.Column("current_stage", sa.String(20), nullable=False, server_default="None"),
    sa.Index(None, "run_id"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("registered_model_id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(
        ["registered_model_id", "version"],
        ["model_versions.registered_model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

# An alias names one version of its model; deleting the version deletes the alias.
registered_model_aliases = sa.Table(
    "registered_model_aliases",
    metadata,
    sa.Column("registered_model_id", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(
        ["registered_model_id", "version"],
        ["model_versions.registered_model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

# Authentication (``cairn server --auth``). Only a hash of each password and API token is
# kept; permissions name a user and an experiment or registered model, and go with either.
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(256), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(256), nullable=False, server_default=""),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("revoked_time", sa.BigInteger, nullable=True),
    sa.Index(None, "user_id"),
)

experiment_permissions = sa.Table(
    "experiment_permissions",
    metadata,
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("permission", sa.String(32), nullable=False),
    sa.Index(None, "user_id"),
)

model_permissions = sa.Table(
    "model_permissions",
    metadata,
    sa.Column(
        "registered_model_id",
        sa.Integer,
        sa.ForeignKey("registered_models.registered_model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("permission", sa.String(32), nullable=False),
    sa.Index(None, "user_id"),
)

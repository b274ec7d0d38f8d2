"""Idempotent client requests, and dataset inputs of runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_requests",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("run_uuid", sa.String(32), nullable=True),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_client_requests"),
    )
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("profile", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("dataset_uuid", name="pk_datasets"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_datasets_experiment_id_experiments",
        ),
        sa.UniqueConstraint(
            "experiment_id", "name", "digest", name="uq_datasets_experiment_id_name_digest"
        ),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("dataset_uuid", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "dataset_uuid", name="pk_run_inputs"),
        sa.ForeignKeyConstraint(
            ["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE", name="fk_run_inputs_run_uuid_runs"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_uuid"],
            ["datasets.dataset_uuid"],
            ondelete="CASCADE",
            name="fk_run_inputs_dataset_uuid_datasets",
        ),
    )
    op.create_table(
        "run_input_tags",
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("dataset_uuid", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "dataset_uuid", "key", name="pk_run_input_tags"),
        sa.ForeignKeyConstraint(
            ["run_uuid", "dataset_uuid"],
            ["run_inputs.run_uuid", "run_inputs.dataset_uuid"],
            ondelete="CASCADE",
            name="fk_run_input_tags_run_uuid_run_inputs",
        ),
    )


def downgrade() -> None:
    op.drop_table("run_input_tags")
    op.drop_table("run_inputs")
    op.drop_table("datasets")
    op.drop_table("client_requests")

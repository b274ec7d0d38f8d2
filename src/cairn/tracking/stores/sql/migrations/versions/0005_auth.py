"""Authentication: users, API tokens (hashes only), experiment and registered-model permissions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.user_id"], ondelete="CASCADE", name=f"fk_{table}_user_id_users"
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(256), nullable=False, server_default=""),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("revoked_time", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        _user_fk("api_tokens"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "experiment_permissions",
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "user_id", name="pk_experiment_permissions"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_experiment_permissions_experiment_id_experiments",
        ),
        _user_fk("experiment_permissions"),
    )
    op.create_index("ix_experiment_permissions_user_id", "experiment_permissions", ["user_id"])
    op.create_table(
        "model_permissions",
        sa.Column("registered_model_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("registered_model_id", "user_id", name="pk_model_permissions"),
        sa.ForeignKeyConstraint(
            ["registered_model_id"],
            ["registered_models.registered_model_id"],
            ondelete="CASCADE",
            name="fk_model_permissions_registered_model_id_registered_models",
        ),
        _user_fk("model_permissions"),
    )
    op.create_index("ix_model_permissions_user_id", "model_permissions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_model_permissions_user_id", "model_permissions")
    op.drop_table("model_permissions")
    op.drop_index("ix_experiment_permissions_user_id", "experiment_permissions")
    op.drop_table("experiment_permissions")
    op.drop_index("ix_api_tokens_user_id", "api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")

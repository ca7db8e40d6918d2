"""Login: workstation-wide settings, failed sign-ins per name, and the viewer role.

Revision ID: 0007_login
Revises: 0006_pseudonyms
Create Date: 2026-12-14

``site_settings`` holds what every program opening this database must obey (login required,
minutes idle before the screen locks); ``login_failures`` counts consecutive failed sign-ins
per (keyed hash of a) user name, so the slow-down survives a restart. Users may now be viewers:
the role's CHECK constraint is rebuilt with the new value. Existing databases keep login off.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_login"
down_revision = "0006_pseudonyms"
branch_labels = None
depends_on = None

_ROLES_BEFORE = ("radiologist", "resident", "technologist", "admin")
_ROLES = (*_ROLES_BEFORE, "viewer")


def _role_check(roles: tuple[str, ...]) -> str:
    return "role IN (" + ", ".join(f"'{role}'" for role in roles) + ")"


def upgrade() -> None:
    op.create_table(
        "site_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_site_settings")),
    )
    op.create_table(
        "login_failures",
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name_key", name=op.f("pk_login_failures")),
    )
    _set_roles(_ROLES)


def downgrade() -> None:
    op.execute(sa.text("UPDATE users SET active = false, role = 'technologist' "
                       "WHERE role = 'viewer'"))
    _set_roles(_ROLES_BEFORE)
    op.drop_table("login_failures")
    op.drop_table("site_settings")


def _set_roles(roles: tuple[str, ...]) -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_user_role"), type_="check")
        batch.create_check_constraint(op.f("ck_users_user_role"), _role_check(roles))

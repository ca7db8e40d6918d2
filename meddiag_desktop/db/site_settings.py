"""Workstation-wide settings kept in the case database: whether login is required, and when.

A setting here holds for every program that opens the database (the app, each ``meddiag``
command, every local account), where a program's own settings file would only bind that program.
Each setting is one row, a small JSON object under a key; changes are audited by the callers
that make them (:mod:`meddiag_desktop.db.login`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from meddiag_desktop.db.schema import SiteSettingRow, now_utc

LOGIN_KEY = "login"
THROTTLE_KEY = "login.throttle_key"  # the secret that names failed sign-ins (login.py)
DEFAULT_IDLE_LOCK_MINUTES = 10
MAX_IDLE_LOCK_MINUTES = 24 * 60


@dataclass(frozen=True)
class LoginPolicy:
    """Whether users must sign in, and after how many idle minutes the app's screen locks."""

    required: bool = False
    idle_lock_minutes: int = DEFAULT_IDLE_LOCK_MINUTES


def get_value(session: Session, key: str) -> dict[str, Any] | None:
    """The setting's JSON object; None when never set (or the table predates migration 0007)."""
    if not inspect(session.connection()).has_table(SiteSettingRow.__tablename__):
        return None
    row = session.get(SiteSettingRow, key)
    return dict(row.value) if row is not None else None


def set_value(session: Session, key: str, value: dict[str, Any], actor: str) -> None:
    """Create or replace the setting in the caller's unit of work."""
    row = session.get(SiteSettingRow, key, with_for_update=True)
    if row is None:
        session.add(SiteSettingRow(key=key, value=value, changed_at=now_utc(), changed_by=actor))
        return
    row.value = value
    row.changed_at = now_utc()
    row.changed_by = actor[:64]


def login_policy(session: Session) -> LoginPolicy:
    value = get_value(session, LOGIN_KEY) or {}
    minutes = value.get("idle_lock_minutes", DEFAULT_IDLE_LOCK_MINUTES)
    return LoginPolicy(
        required=bool(value.get("required", False)),
        idle_lock_minutes=minutes if isinstance(minutes, int) else DEFAULT_IDLE_LOCK_MINUTES,
    )

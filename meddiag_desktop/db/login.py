"""Signing in: login on or off for the workstation, password checks, and slowing guessing down.

Login is a site setting (:mod:`.site_settings`): off by default, single-user mode, where the
operating-system user acts. With login on, :meth:`Database.open` makes the acting user
:data:`~meddiag_desktop.db.engine.NOT_SIGNED_IN` whatever the environment says (``USER=anyone``
changes nothing): such a database reads, and refuses every write, until :func:`sign_in` returns a
view acting as the user whose password matched.

Failed sign-ins are audited and slowed down per user name: after :data:`FREE_FAILURES` in a row,
each further try must wait :func:`delay_after` seconds (doubling, up to :data:`MAX_DELAY_S`),
counted in the database so that restarting the program does not reset it. Unknown names, wrong
passwords, deactivated users and users without a password all get the same message, the same
argon2 work and the same slow-down, so the prompt does not tell which names exist. The name
typed is stored only as a keyed hash, and a password never reaches an audit row or a log.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import add_event, log_event
from meddiag_desktop.db.engine import NOT_SIGNED_IN, Database, DatabaseSettings
from meddiag_desktop.db.records import AuditAction, User, UserRole
from meddiag_desktop.db.roles import Permission, check_in
from meddiag_desktop.db.schema import LoginFailureRow, UserRow, now_utc
from meddiag_desktop.db.site_settings import (
    LOGIN_KEY,
    MAX_IDLE_LOCK_MINUTES,
    THROTTLE_KEY,
    LoginPolicy,
    get_value,
    login_policy,
    set_value,
)

SYSTEM_ACTOR = "(meddiag)"  # what the program records by itself: a failed sign-in, a healed save
FAILED_MESSAGE = "wrong user name or password"
FREE_FAILURES = 3
BASE_DELAY_S = 2.0
MAX_DELAY_S = 300.0
USER_ENVIRONMENT_VARIABLE = "MEDDIAG_USER"  # who a command line signs in as, with login on
Clock = Callable[[], datetime]


class LoginFailedError(errors.PermissionDeniedError):
    """The name and password do not sign anyone in (the message never says which was wrong)."""

    def __init__(self, message: str, wait_s: float = 0.0) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class LoginThrottledError(LoginFailedError):
    """Too many failures with this name: the password was not even checked."""


def actor_at_open(db: Database) -> str:
    """The acting user of a database just opened: nobody when login is on, else ``db.actor``."""
    with db.reading() as session:
        required = login_policy(session).required
    return NOT_SIGNED_IN if required else db.actor


def program_view(db: Database) -> Database:
    """``db`` itself, or for a database nobody signed in to, a view writing as the program."""
    return db.acting_as(SYSTEM_ACTOR) if db.actor == NOT_SIGNED_IN else db


def policy(db: Database) -> LoginPolicy:
    with db.reading() as session:
        return login_policy(session)


def login_required(db: Database) -> bool:
    return policy(db).required


def delay_after(failures: int) -> float:
    """Seconds the next try must wait after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** (failures - FREE_FAILURES))


def sign_in(db: Database, username: str, password: str, clock: Clock = now_utc) -> Database:
    """``db`` acting as ``username`` if the password is theirs; else LoginFailedError (audited).

    Works with login off too (``meddiag login on`` proves the admin's password this way).
    """
    name = username.strip()
    key = _name_key(db, name)
    with db.reading() as session:
        throttle = session.get(LoginFailureRow, key)
        wait = _wait_s(throttle, clock()) if throttle is not None else 0.0
    if wait > 0:
        raise LoginThrottledError(
            f"too many failed sign-ins with this name: wait {_seconds(wait)} before trying again",
            wait,
        )
    user = _verify(db, name, password)
    if user is None:
        failures = _record_failure(db, key, name, clock())
        delay = delay_after(failures)
        later = f"; wait {_seconds(delay)} before the next try" if delay else ""
        raise LoginFailedError(FAILED_MESSAGE + later, delay)
    with db.acting_as(user.username).writing() as session:
        row = session.get(LoginFailureRow, key)
        if row is not None:
            session.delete(row)
        add_event(
            session, user.username, AuditAction.LOGIN_SUCCEEDED, "user", user.user_id,
            details={"username": user.username, "role": user.role.value},
        )
    return db.acting_as(user.username)


def signed_in_user(db: Database) -> User | None:
    """The registered user ``db`` acts as (None: nobody signed in, or an unregistered name)."""
    from meddiag_desktop.db import records_from_rows

    with db.reading() as session:
        row = session.scalars(select(UserRow).where(UserRow.username == db.actor)).first()
        return records_from_rows.user(row) if row is not None else None


def set_login(
    db: Database, required: bool, idle_lock_minutes: int | None = None
) -> LoginPolicy:
    """Turn login on or off for everyone using this database (audited).

    Once login is on only a signed-in admin may change it. Turning it on needs an active admin
    with a password, so nobody is locked out of their own workstation.
    """
    with db.writing() as session:
        before = login_policy(session)
        if before.required:
            check_in(session, db.actor, Permission.MANAGE_USERS)
        minutes = before.idle_lock_minutes if idle_lock_minutes is None else idle_lock_minutes
        if not 1 <= minutes <= MAX_IDLE_LOCK_MINUTES:
            raise errors.CaseDatabaseError(
                f"the screen locks after 1 to {MAX_IDLE_LOCK_MINUTES} idle minutes, not {minutes}"
            )
        if required and usable_admins(session) == 0:
            raise errors.PermissionDeniedError(
                "login needs an active admin with a password first (meddiag users add NAME "
                "--role admin), or nobody could manage users once it is on"
            )
        after = LoginPolicy(required=required, idle_lock_minutes=minutes)
        set_value(session, LOGIN_KEY, asdict(after), db.actor)
        add_event(
            session, db.actor, AuditAction.LOGIN_CHANGED, "setting", LOGIN_KEY,
            details={"before": asdict(before), "after": asdict(after)},
        )
        return after


def usable_admins(session: Session, besides: str = "") -> int:
    """Active admins with a password (other than ``besides``): who can still manage users."""
    return int(
        session.scalar(
            select(func.count(UserRow.id)).where(
                UserRow.role == UserRole.ADMIN,
                UserRow.active.is_(True),
                UserRow.password_hash.is_not(None),
                UserRow.username != besides,
            )
        )
        or 0
    )


def record_screen_lock(db: Database, locked: bool, idle_minutes: int | None = None) -> None:
    """The app locked its screen (after ``idle_minutes`` idle, or on request) or was unlocked."""
    action = AuditAction.SCREEN_LOCKED if locked else AuditAction.SCREEN_UNLOCKED
    details: dict[str, Any] = {} if idle_minutes is None else {"idle_minutes": idle_minutes}
    log_event(db, action, None, details)


def open_signed_in(
    settings: DatabaseSettings,
    username: str = "",
    read: Callable[[str], str] | None = None,
) -> Database:
    """Open the database for a command line: with login on and a name given (else
    ``$MEDDIAG_USER``), signed in as that user with the password ``read`` returns (default
    :func:`read_password`). Without a name such a database reads and refuses writes."""
    db = Database.open(settings)
    try:
        name = (username or os.environ.get(USER_ENVIRONMENT_VARIABLE, "")).strip()
        if db.actor == NOT_SIGNED_IN and name:
            db = sign_in(db, name, (read or read_password)(f"Password for {name}: "))
    except BaseException:
        db.close()
        raise
    return db


def read_password(prompt: str = "Password: ") -> str:
    """How a command line takes a password: the terminal without echo, else one line of stdin
    (for scripts: ``printf '%s\\n' "$PW" | meddiag ...``). Never an argument or a variable."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise errors.PermissionDeniedError("no password given: type it, or pipe it on stdin")
    return line.rstrip("\r\n")


# ---- inside ------------------------------------------------------------------------------------
_dummy: list[str] = []  # an argon2 hash to verify unknown names against (same work, same time)


def _verify(db: Database, name: str, password: str) -> User | None:
    from argon2.exceptions import InvalidHashError, VerificationError

    from meddiag_desktop.db import records_from_rows
    from meddiag_desktop.db.users import password_hasher

    hasher = password_hasher()
    with db.reading() as session:
        row = session.scalars(select(UserRow).where(UserRow.username == name)).first()
        user = records_from_rows.user(row) if row is not None else None
        stored = row.password_hash if row is not None and row.active else None
    if not _dummy:
        _dummy.append(hasher.hash(secrets.token_hex(16)))
    try:
        hasher.verify(stored or _dummy[0], password)  # argon2 compares in constant time
    except (VerificationError, InvalidHashError):
        return None
    if stored is None or user is None:
        return None
    if hasher.check_needs_rehash(stored):
        with program_view(db).writing() as session:
            fresh = session.get(UserRow, user.user_id)
            if fresh is not None:
                fresh.password_hash = hasher.hash(password)
    return user


def _record_failure(db: Database, key: str, name: str, when: datetime) -> int:
    """Count the failure under the name's key and audit it; the failures in a row."""
    with db.acting_as(SYSTEM_ACTOR).writing() as session:
        row = session.get(LoginFailureRow, key, with_for_update=True)
        if row is None:
            row = LoginFailureRow(name_key=key, failures=0, last_failed_at=when)
            session.add(row)
        row.failures += 1
        row.last_failed_at = when
        user = session.scalars(select(UserRow).where(UserRow.username == name)).first()
        reason = (
            "unknown user name" if user is None
            else "deactivated user" if not user.active
            else "no password set" if user.password_hash is None
            else "wrong password"
        )
        add_event(
            session, SYSTEM_ACTOR, AuditAction.LOGIN_FAILED, "user",
            user.id if user is not None else "",
            details={
                # A name nobody has may be a password typed in the wrong field: never stored.
                "username": user.username if user is not None else None,
                "reason": reason,
                "failures_in_a_row": row.failures,
                "next_try_wait_s": delay_after(row.failures),
            },
        )
        return row.failures


def _wait_s(row: LoginFailureRow, now: datetime) -> float:
    allowed = row.last_failed_at + timedelta(seconds=delay_after(row.failures))
    return max(0.0, (allowed - now).total_seconds())


def _name_key(db: Database, name: str) -> str:
    """HMAC-SHA256 of the name under this database's own random secret (made on first use)."""
    with db.reading() as session:
        value = get_value(session, THROTTLE_KEY)
    if value is None:
        with db.acting_as(SYSTEM_ACTOR).writing() as session:
            value = get_value(session, THROTTLE_KEY)
            if value is None:
                value = {"secret": secrets.token_hex(32)}
                set_value(session, THROTTLE_KEY, value, SYSTEM_ACTOR)
    secret = bytes.fromhex(str(value["secret"]))
    return hmac.new(secret, name.encode("utf-8"), hashlib.sha256).hexdigest()


def _seconds(value: float) -> str:
    whole = max(1, round(value))
    return f"{whole} s" if whole < 120 else f"{round(whole / 60)} min"

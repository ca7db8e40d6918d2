"""Users: who reviews and signs. Passwords (only where login is enabled) are argon2id hashes.

Argon2id is the OWASP-recommended password hash: memory-hard, so a stolen database file does
not give up weak passwords to a GPU quickly. The hash string carries its own parameters; a hash
made with weaker ones is upgraded at the next successful login.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors, records_from_rows
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import AuditAction, User, UserRole
from meddiag_desktop.db.roles import Permission, check_in
from meddiag_desktop.db.schema import UserRow

MIN_PASSWORD_LENGTH = 8


def add_user(
    db: Database,
    username: str,
    role: UserRole,
    display_name: str = "",
    password: str | None = None,
) -> User:
    """Register a user; raises ConflictError if the name is taken."""
    username = username.strip()
    if not username or len(username) > 64:
        raise errors.CaseDatabaseError("a user name needs 1 to 64 characters")
    if username.startswith("("):  # "(not signed in)", "(meddiag)": the program's own names
        raise errors.CaseDatabaseError("a user name cannot start with '('")
    password_hash = _hash(password) if password is not None else None
    with db.writing() as session:
        check_in(session, db.actor, Permission.MANAGE_USERS)
        if session.scalars(select(UserRow.id).where(UserRow.username == username)).first():
            raise errors.ConflictError(f"there is already a user named '{username}'")
        row = UserRow(
            username=username, display_name=display_name, role=role, password_hash=password_hash
        )
        session.add(row)
        session.flush()
        add_event(
            session,
            db.actor,
            AuditAction.USER_ADDED,
            "user",
            row.id,
            details={"username": username, "role": role.value, "login": password is not None},
        )
        return records_from_rows.user(row)


def ensure_user(db: Database, username: str, role: UserRole, display_name: str = "") -> User:
    """The user, registered first if unknown (the desktop app's single local user)."""
    try:
        return get_user(db, username)
    except errors.NotFoundError:
        try:
            return add_user(db, username, role, display_name)
        except errors.ConflictError:  # registered meanwhile by another window
            return get_user(db, username)


def get_user(db: Database, username: str) -> User:
    with db.reading() as session:
        return records_from_rows.user(_row(session, username))


def list_users(db: Database) -> tuple[User, ...]:
    with db.reading() as session:
        rows = session.scalars(select(UserRow).order_by(UserRow.username)).all()
        return tuple(records_from_rows.user(r) for r in rows)


def set_password(db: Database, username: str, password: str | None) -> None:
    """Set (or with None, clear) a user's login password: admins for anyone, users for
    themselves. The last admin who can sign in keeps theirs while login is on."""
    password_hash = _hash(password) if password is not None else None
    with db.writing() as session:
        if db.actor != username:
            check_in(session, db.actor, Permission.MANAGE_USERS)
        row = _row(session, username)
        if password_hash is None:
            _keep_an_admin(session, row)
        row.password_hash = password_hash
        add_event(
            session,
            db.actor,
            AuditAction.USER_CHANGED,
            "user",
            row.id,
            details={"username": username, "password": "set" if password else "cleared"},
        )


def set_active(db: Database, username: str, active: bool) -> None:
    """Users are deactivated, never deleted: their reviews keep naming them."""
    with db.writing() as session:
        check_in(session, db.actor, Permission.MANAGE_USERS)
        row = _row(session, username)
        if not active:
            _keep_an_admin(session, row)
        row.active = active
        add_event(
            session,
            db.actor,
            AuditAction.USER_CHANGED,
            "user",
            row.id,
            details={"username": username, "active": active},
        )


def password_hasher() -> Any:
    """argon2id with the library's current defaults (RFC 9106 low-memory profile)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


def verify_password(db: Database, username: str, password: str) -> bool:
    """Whether the password is right (False for unknown, inactive or password-less users)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = password_hasher()
    with db.reading() as session:
        row = session.scalars(select(UserRow).where(UserRow.username == username)).first()
        if row is None or not row.active or row.password_hash is None:
            return False
        stored = row.password_hash
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(stored):
        with db.writing() as session:
            _row(session, username).password_hash = hasher.hash(password)
    return True


def acting_user(session: Session, username: str) -> UserRow:
    """The registered, active user behind ``username``, for reviews and sign-off."""
    row = session.scalars(select(UserRow).where(UserRow.username == username)).first()
    if row is None:
        raise errors.PermissionDeniedError(
            f"'{username}' is not a registered user: an administrator has to add them first"
        )
    if not row.active:
        raise errors.PermissionDeniedError(f"the user '{username}' is deactivated")
    return row


def _keep_an_admin(session: Session, row: UserRow) -> None:
    """Refuse to take away the last admin's sign-in while login is on (nobody could undo it)."""
    from meddiag_desktop.db.login import usable_admins
    from meddiag_desktop.db.site_settings import login_policy

    if (
        row.role == UserRole.ADMIN
        and login_policy(session).required
        and usable_admins(session, besides=row.username) == 0
    ):
        raise errors.PermissionDeniedError(
            f"'{row.username}' is the last admin who can sign in: with login on, add another "
            "admin first (or turn login off)"
        )


def _row(session: Session, username: str) -> UserRow:
    row = session.scalars(select(UserRow).where(UserRow.username == username)).first()
    if row is None:
        raise errors.NotFoundError(f"there is no user named '{username}'")
    return row


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.CaseDatabaseError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
        )
    return str(password_hasher().hash(password))

"""Login: argon2 password checks, failed sign-ins audited and slowed down (and the slow-down
kept across a restart), no password in the audit trail or the log, roles checked in the core,
and with login on the actor is the user signed in, whatever the environment says."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import recent_events
from meddiag_desktop.db.engine import NOT_SIGNED_IN, Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.login import (
    FAILED_MESSAGE,
    FREE_FAILURES,
    LoginFailedError,
    LoginThrottledError,
    delay_after,
    login_required,
    set_login,
    sign_in,
)
from meddiag_desktop.db.records import AuditAction, UserRole
from meddiag_desktop.db.roles import Permission, require
from meddiag_desktop.db.schema import LoginFailureRow, UserRow, now_utc
from meddiag_desktop.db.users import add_user, set_active, set_password

PASSWORD = "correct horse battery"
WRONG = "Tr0ub4dor&3-guess"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cases.sqlite3"


def open_db(path: Path, actor: str | None = "setup") -> Database:
    return Database.open(DatabaseSettings(url=str(path), actor=actor))


@pytest.fixture
def db(path: Path):
    """Login on, with an admin, a radiologist and a viewer (all with passwords)."""
    database = open_db(path)
    for name, role in (("ada", UserRole.ADMIN), ("rita", UserRole.RADIOLOGIST),
                       ("vic", UserRole.VIEWER)):
        add_user(database, name, role, password=PASSWORD)
    set_login(database, True)
    database.close()
    reopened = open_db(path)
    yield reopened
    reopened.close()


class Clock:
    """A hand-moved clock for the throttle."""

    def __init__(self) -> None:
        self.now = now_utc()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_the_stored_hash_is_argon2id_and_only_the_right_password_signs_in(db: Database) -> None:
    with db.reading() as session:
        stored = session.scalars(select(UserRow.password_hash).where(UserRow.username == "rita"))
        hashed = stored.one()
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert sign_in(db, "rita", PASSWORD).actor == "rita"
    with pytest.raises(LoginFailedError, match=FAILED_MESSAGE):
        sign_in(db, "rita", WRONG)


def test_unknown_names_and_wrong_passwords_get_the_same_answer(db: Database) -> None:
    messages = []
    for name, password in (("rita", WRONG), ("nobody", WRONG), ("nobody", PASSWORD)):
        with pytest.raises(LoginFailedError) as refused:
            sign_in(db, name, password)
        messages.append(str(refused.value))
    assert messages == [FAILED_MESSAGE] * 3
    set_active(sign_in(db, "ada", PASSWORD), "vic", False)
    with pytest.raises(LoginFailedError, match=f"^{FAILED_MESSAGE}$"):
        sign_in(db, "vic", PASSWORD)  # deactivated: the right password does not help, nor say so


def test_failed_sign_ins_are_audited_without_the_password(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    typed_as_name = "my-s3cret-typed-in-the-name-field"
    for name, password in (("rita", WRONG), (typed_as_name, WRONG)):
        with pytest.raises(LoginFailedError):
            sign_in(db, name, password)
    sign_in(db, "rita", PASSWORD)
    events = recent_events(db, limit=10)
    failed = [e for e in events if e.action is AuditAction.LOGIN_FAILED]
    assert [e.details["reason"] for e in failed] == ["unknown user name", "wrong password"]
    assert [e.details["username"] for e in failed] == [None, "rita"]
    assert {e.actor for e in failed} == {"(meddiag)"}
    succeeded = [e for e in events if e.action is AuditAction.LOGIN_SUCCEEDED]
    assert [e.actor for e in succeeded] == ["rita"]
    everything = json.dumps([[e.actor, e.details] for e in recent_events(db, limit=100)])
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in (PASSWORD, WRONG, typed_as_name):
        assert secret not in everything and secret not in logged
    with db.reading() as session:  # the throttle keys names by a keyed hash, never the name
        keys = session.scalars(select(LoginFailureRow.name_key)).all()
    assert keys and all(typed_as_name not in key for key in keys)


def test_failures_slow_down_per_name_and_survive_a_restart(db: Database, path: Path) -> None:
    clock = Clock()
    for _ in range(FREE_FAILURES - 1):
        with pytest.raises(LoginFailedError) as refused:
            sign_in(db, "rita", WRONG, clock)
        assert refused.value.wait_s == 0
    with pytest.raises(LoginFailedError, match="wait 2 s before the next try"):
        sign_in(db, "rita", WRONG, clock)
    # Within the wait, even the right password is not checked.
    with pytest.raises(LoginThrottledError, match="too many failed sign-ins"):
        sign_in(db, "rita", PASSWORD, clock)
    assert sign_in(db, "ada", PASSWORD, clock).actor == "ada"  # other names are not slowed

    restarted = open_db(path)
    try:
        with pytest.raises(LoginThrottledError):
            sign_in(restarted, "rita", PASSWORD, clock)
        clock.advance(delay_after(FREE_FAILURES) + 0.1)
        with pytest.raises(LoginFailedError, match="wait 4 s"):  # doubling
            sign_in(restarted, "rita", WRONG, clock)
        clock.advance(4.1)
        assert sign_in(restarted, "rita", PASSWORD, clock).actor == "rita"
        clock.advance(0)
        with pytest.raises(LoginFailedError) as fresh:  # a success starts the count again
            sign_in(restarted, "rita", WRONG, clock)
        assert fresh.value.wait_s == 0
    finally:
        restarted.close()
    # Unknown names are slowed exactly like known ones (no enumeration by timing out).
    for _ in range(FREE_FAILURES):
        with pytest.raises(LoginFailedError) as last:
            sign_in(db, "nobody", WRONG, clock)
    assert last.value.wait_s == delay_after(FREE_FAILURES)
    assert delay_after(100) == 300.0


def test_with_login_on_the_actor_is_the_user_signed_in_whatever_user_says(
    db: Database, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import db_fakes

    for variable in ("USER", "LOGNAME", "USERNAME", "LNAME"):
        monkeypatch.setenv(variable, "anyone")
    unsigned = Database.open(DatabaseSettings(url=str(path)))  # no actor given: the OS user
    try:
        assert unsigned.actor == NOT_SIGNED_IN
        with pytest.raises(errors.PermissionDeniedError, match="sign in first"):
            import_series(unsigned, db_fakes.series(1))
        signed = sign_in(unsigned, "rita", PASSWORD)
        assert import_series(signed, db_fakes.series(1)).created
    finally:
        unsigned.close()
    # An actor named in the settings does not get past login either.
    named = Database.open(DatabaseSettings(url=str(path), actor="anyone"))
    try:
        assert named.actor == NOT_SIGNED_IN
    finally:
        named.close()
    actors = {e.actor for e in recent_events(db, limit=100)}
    assert "anyone" not in actors
    imported = [e for e in recent_events(db) if e.action is AuditAction.CASE_IMPORTED]
    assert [e.actor for e in imported] == ["rita"]


def test_with_login_off_the_operating_system_user_acts(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "someone")
    monkeypatch.setenv("LOGNAME", "someone")
    with Database.open(DatabaseSettings(url=str(path))) as db:
        assert not login_required(db) and db.actor == "someone"


def test_roles_are_checked_in_the_core(db: Database) -> None:
    viewer = sign_in(db, "vic", PASSWORD)
    for permission in (Permission.REVIEW, Permission.SIGN, Permission.EXPORT,
                       Permission.MANAGE_USERS, Permission.MANAGE_MODELS):
        with pytest.raises(errors.PermissionDeniedError, match="vic"):
            require(viewer, permission)
    radiologist = sign_in(db, "rita", PASSWORD)
    require(radiologist, Permission.SIGN)
    with pytest.raises(errors.PermissionDeniedError, match="only an admin"):
        add_user(radiologist, "eve", UserRole.ADMIN, password=PASSWORD)
    with pytest.raises(errors.PermissionDeniedError, match="only an admin"):
        set_password(radiologist, "ada", WRONG)
    set_password(radiologist, "rita", "a new password")  # their own
    admin = sign_in(db, "ada", PASSWORD)
    add_user(admin, "eve", UserRole.RESIDENT, password=PASSWORD)
    with pytest.raises(errors.PermissionDeniedError, match="last admin"):
        set_active(admin, "ada", False)
    with pytest.raises(errors.PermissionDeniedError, match="sign in first"):
        add_user(db, "mallory", UserRole.ADMIN, password=PASSWORD)  # nobody signed in


def test_only_an_admin_looks_up_a_pseudonym_and_a_refusal_is_audited(db: Database) -> None:
    from meddiag_desktop.db.pseudonyms import lookup_pseudonym

    radiologist = sign_in(db, "rita", PASSWORD)
    with pytest.raises(errors.PermissionDeniedError, match="only an admin can look up"):
        lookup_pseudonym(radiologist, "ANON-0000000000")
    admin = sign_in(db, "ada", PASSWORD)
    with pytest.raises(errors.NotFoundError):
        lookup_pseudonym(admin, "ANON-0000000000")  # allowed; there is no such pseudonym
    asked = [e for e in recent_events(db, limit=20) if e.action is AuditAction.PSEUDONYM_LOOKED_UP]
    assert [(e.actor, "refused" in e.details) for e in asked][:2] == [  # newest first
        ("ada", False), ("rita", True)
    ]


def test_login_on_needs_an_admin_with_a_password_and_off_needs_an_admin(path: Path) -> None:
    with open_db(path) as db:
        add_user(db, "rita", UserRole.RADIOLOGIST, password=PASSWORD)
        add_user(db, "ada", UserRole.ADMIN)  # no password: could never sign in
        with pytest.raises(errors.PermissionDeniedError, match="active admin with a password"):
            set_login(db, True)
        set_password(db, "ada", PASSWORD)
        assert set_login(db, True, idle_lock_minutes=5).idle_lock_minutes == 5
    with open_db(path) as db:
        with pytest.raises(errors.PermissionDeniedError, match="only an admin"):
            set_login(sign_in(db, "rita", PASSWORD), False)
        set_login(sign_in(db, "ada", PASSWORD), False)
        changes = [e for e in recent_events(db) if e.action is AuditAction.LOGIN_CHANGED]
        assert [e.details["after"]["required"] for e in changes] == [False, True]
        assert changes[0].actor == "ada"
    with open_db(path) as db:
        assert db.actor == "setup" and not login_required(db)

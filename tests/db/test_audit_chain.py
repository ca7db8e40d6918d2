"""The audit log's hash chain: intact after real work, broken exactly where a row was edited or
deleted behind the app's back (triggers dropped), backfilled by migration 0005, never forked by
concurrent writers; ``meddiag audit``, ``meddiag audit verify`` and ``meddiag db check``."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import db_fakes
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from meddiag_desktop.cli import main
from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import add_event, list_events, log_event, verify_audit_chain
from meddiag_desktop.db.audit_chain import GENESIS, event_hash
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.integrity import check_database
from meddiag_desktop.db.migrate import upgrade
from meddiag_desktop.db.migrations import HEAD
from meddiag_desktop.db.records import AuditAction, ChainBreakKind, ReviewStatus, UserRole
from meddiag_desktop.db.reviews import review_finding, sign_case
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.db.users import ensure_user

BEFORE_CHAIN = "0004_worklist_sort_keys"


def reviewed_and_signed_case(db: Database, index: int = 1) -> int:
    """Import, a model run, every finding reviewed, viewed, exported, signed: many events."""
    ensure_user(db, "dr_a", UserRole.RADIOLOGIST)
    doctor = db.acting_as("dr_a")
    case_id = import_series(db, db_fakes.series(index)).case_id
    volume = db_fakes.volume(index)
    store_inference(db, case_id, volume, db_fakes.result(volume, 2, seed=index))
    from meddiag_desktop.db.cases import get_case

    for stored in get_case(db, case_id).runs[0].findings:
        review_finding(doctor, stored.finding_pk, ReviewStatus.ACCEPTED)
    log_event(doctor, AuditAction.CASE_VIEWED, case_id)
    log_event(doctor, AuditAction.REPORT_EXPORTED, case_id, {"files": [{"name": "r.pdf"}]})
    sign_case(doctor, case_id)
    return case_id


def stored_chain(db: Database) -> list[tuple[int, str, str]]:
    with db.reading() as session:
        rows = session.execute(
            text("SELECT id, prev_hash, row_hash FROM audit_events ORDER BY id")
        ).all()
    return [tuple(r) for r in rows]


def tamper(db: Database, statement: str) -> None:
    """Run ``statement`` on the audit table with its append-only triggers out of the way, the
    way someone with the file (or the server's admin password) could."""
    path = db.sqlite_path
    if path is not None:
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
            connection.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
            connection.execute(statement)
        return
    import psycopg

    url = db.url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as connection:
        connection.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        connection.execute(statement)
        connection.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


def meddiag(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_chain_is_intact_after_imports_reviews_and_sign_off(db: Database) -> None:
    reviewed_and_signed_case(db, 1)
    reviewed_and_signed_case(db, 2)
    with db.writing() as session:  # several events in one unit chain in the order added
        for number in range(3):
            add_event(session, db.actor, AuditAction.CASE_VIEWED, "case", number, None)
    chain = stored_chain(db)
    assert len(chain) >= 15
    assert chain[0][1] == GENESIS
    assert all(later[1] == earlier[2] for earlier, later in itertools.pairwise(chain))
    assert len({row_hash for _id, _prev, row_hash in chain}) == len(chain)
    report = verify_audit_chain(db)
    assert report.intact and report.events == len(chain) and report.head_hash == chain[-1][2]
    check = check_database(db)
    assert check.ok and check.audit_chain == report
    # the stored hash is the documented canonical form's
    last = list_events(db)[-1]
    values = {
        "occurred_at": last.occurred_at,
        "actor": last.actor,
        "action": str(last.action),
        "object_type": last.object_type,
        "object_id": last.object_id,
        "case_id": last.case_id,
        "details": last.details,
    }
    assert event_hash(values, chain[-2][2]) == chain[-1][2]


def test_an_edited_row_is_named_exactly(db: Database) -> None:
    reviewed_and_signed_case(db)
    victim = stored_chain(db)[4][0]
    tamper(db, f'UPDATE audit_events SET details = \'{{"reason": "nothing"}}\' WHERE id = {victim}')
    report = verify_audit_chain(db)
    assert report.first_break is not None
    assert report.first_break.event_id == victim
    assert report.first_break.kind is ChainBreakKind.CONTENT
    assert report.events == 4  # the events before it still check out
    assert not check_database(db).ok


def test_an_edited_actor_is_caught_too(db: Database) -> None:
    reviewed_and_signed_case(db)
    victim = stored_chain(db)[-1][0]  # the sign-off
    tamper(db, f"UPDATE audit_events SET actor = 'somebody else' WHERE id = {victim}")
    broken = verify_audit_chain(db).first_break
    assert broken is not None and broken.event_id == victim
    assert broken.kind is ChainBreakKind.CONTENT and broken.action == "case.signed"


def test_a_deleted_row_breaks_the_link_of_the_next(db: Database) -> None:
    reviewed_and_signed_case(db)
    chain = stored_chain(db)
    victim, after = chain[3][0], chain[4][0]
    tamper(db, f"DELETE FROM audit_events WHERE id = {victim}")
    broken = verify_audit_chain(db).first_break
    assert broken is not None
    assert broken.event_id == after and broken.kind is ChainBreakKind.LINK
    assert broken.missing_ids == (victim, victim)
    assert f"event id {victim} deleted" in broken.reason


def test_deleting_the_first_row_is_caught(db: Database) -> None:
    reviewed_and_signed_case(db)
    first, second = (row[0] for row in stored_chain(db)[:2])
    tamper(db, f"DELETE FROM audit_events WHERE id = {first}")
    broken = verify_audit_chain(db).first_break
    assert broken is not None and broken.event_id == second and broken.kind is ChainBreakKind.LINK


def test_a_fork_is_refused_by_the_database(db: Database) -> None:
    """Even a writer that skipped the lock cannot link a second event to the same one."""
    log_event(db, AuditAction.CASE_VIEWED, None)
    _id, prev, _hash = stored_chain(db)[-1]
    with pytest.raises((errors.CaseDatabaseError, IntegrityError)), db.writing() as session:
        session.execute(
            text(
                "INSERT INTO audit_events (occurred_at, actor, action, object_type, object_id, "
                "details, prev_hash, row_hash) VALUES (:t, 'x', 'case.viewed', '', '', '{}', "
                ":prev, :hash)"
            ),
            {"t": datetime(2026, 1, 1), "prev": prev, "hash": "f" * 64},
        )
    assert verify_audit_chain(db).intact


def test_concurrent_writers_never_fork_the_chain(db: Database, tmp_path: Path) -> None:
    """Four connections (their own engines, as four app windows) append at once."""
    settings = DatabaseSettings(url=db.url.render_as_string(hide_password=False))
    if db.sqlite_path is None:
        settings = DatabaseSettings(url=settings.url, masks_dir=tmp_path / "masks")
    writers = [Database.open(settings).acting_as(f"writer{n}") for n in range(4)]
    failures: list[BaseException] = []

    def write(writer: Database) -> None:
        try:
            for _ in range(15):
                log_event(writer, AuditAction.CASE_VIEWED, None, {"by": writer.actor})
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    assert failures == []
    report = verify_audit_chain(db)
    assert report.intact
    assert sum(e.actor.startswith("writer") for e in list_events(db)) == 60


def test_unreadable_values_are_a_broken_row_not_a_crash(sqlite_db: Database) -> None:
    reviewed_and_signed_case(sqlite_db)
    victim = stored_chain(sqlite_db)[2][0]
    tamper(sqlite_db, f"UPDATE audit_events SET details = 'not json' WHERE id = {victim}")
    broken = verify_audit_chain(sqlite_db).first_break
    assert broken is not None and broken.event_id == victim and "not JSON" in broken.reason


def test_verify_command_exits_1_naming_the_edited_row(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    reviewed_and_signed_case(sqlite_db)
    path = str(sqlite_db.sqlite_path)
    code, out, _err = meddiag(capsys, "audit", "verify", "--db", path)
    events = len(stored_chain(sqlite_db))
    assert code == 0 and out.startswith(f"audit chain intact: {events} events")

    victim = stored_chain(sqlite_db)[5]
    tamper(sqlite_db, f"UPDATE audit_events SET details = '{{}}' WHERE id = {victim[0]}")
    with sqlite_db.reading() as session:
        action = session.execute(
            text("SELECT action FROM audit_events WHERE id = :i"), {"i": victim[0]}
        ).scalar_one()
    code, out, err = meddiag(capsys, "audit", "verify", "--db", path)
    assert code == 1
    assert f"audit chain BROKEN at event {victim[0]} (" in err and action in err
    assert "content broken" in err

    code, out, _err = meddiag(capsys, "db", "check", "--db", path)
    assert code == 1 and f"audit chain       BROKEN at event {victim[0]} (" in out


def test_verify_command_names_a_deleted_row(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    reviewed_and_signed_case(sqlite_db)
    victim, after = (row[0] for row in stored_chain(sqlite_db)[6:8])
    tamper(sqlite_db, f"DELETE FROM audit_events WHERE id = {victim}")
    code, _out, err = meddiag(capsys, "audit", "--db", str(sqlite_db.sqlite_path), "verify")
    assert code == 1
    assert f"at event {after} (" in err and "link broken" in err
    assert f"event id {victim} deleted" in err


def test_audit_command_lists_filters_and_prints_json(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    first = reviewed_and_signed_case(sqlite_db, 1)
    second = reviewed_and_signed_case(sqlite_db, 2)
    path = str(sqlite_db.sqlite_path)
    code, out, _err = meddiag(capsys, "audit", "--case", str(second), "--db", path)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "time", "(UTC)"]
    body, column = lines[1:-1], lines[0].index("case")
    assert body and all(line[column - 1 : column + 4].strip() == str(second) for line in body)
    assert any("dr_a" in line and "case.signed" in line for line in body)
    assert lines[-1] == f"{len(body)} event(s)"

    code, out, _err = meddiag(capsys, "audit", "--json", "--db", path)
    events = json.loads(out)
    assert {e["case_id"] for e in events} >= {first, second}
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)
    assert {"occurred_at", "actor", "action", "object_type", "object_id", "details"} <= set(
        events[0]
    )

    tomorrow = datetime.now(UTC).date().toordinal() + 1
    later = datetime.fromordinal(tomorrow).date().isoformat()
    code, out, _err = meddiag(capsys, "audit", "--since", later, "--db", path)
    assert code == 0 and out.strip() == "No audit events."
    with pytest.raises(SystemExit) as refused:
        main(["audit", "--since", "yesterday", "--db", path])
    assert refused.value.code == 2 and "is not a date" in capsys.readouterr().err


# ---- migration 0005 -------------------------------------------------------------------------


def _events_at_0004(database: Database) -> None:
    """Audit rows as the app before the chain wrote them (raw SQL: today's model is newer)."""
    with database.writing() as session:
        for number, details in enumerate(
            ({"files": 3, "name": "Ünïcode ✓"}, {"nested": {"b": [1, 2.5], "a": None}}, {})
        ):
            session.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, actor, action, object_type, "
                    "object_id, case_id, details) VALUES (:t, 'old app', 'case.viewed', 'case', "
                    ":o, :c, :d)"
                ),
                {
                    "t": datetime(2025, 1, 2, 3, 4, 5, 6789 * number),
                    "o": str(number),
                    "c": number or None,
                    "d": json.dumps(details),
                },
            )


def _migrated_from_0004(url: str, masks: Path, check: Callable[[Database], None]) -> None:
    old = Database.open(DatabaseSettings(url=url, migrate=False, masks_dir=masks, actor="old"))
    upgrade(old, BEFORE_CHAIN)
    _events_at_0004(old)
    old.close()
    with Database.open(DatabaseSettings(url=url, masks_dir=masks, actor="new app")) as db:
        report = verify_audit_chain(db)
        assert report.intact
        events = list_events(db)
        # 0001..0004's migration event, three old rows, then the migration to head (chained)
        assert report.events == len(events) == 5
        assert events[-1].action is AuditAction.DATABASE_MIGRATED
        assert events[-1].details["to"] == HEAD
        assert stored_chain(db)[0][1] == GENESIS
        for statement in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
            with pytest.raises(errors.CaseDatabaseError, match="append-only"), db.writing() as s:
                s.execute(text(statement))  # the triggers are back
        reviewed_and_signed_case(db)
        assert verify_audit_chain(db).intact
        check(db)


def test_migration_backfills_the_chain_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "meddiag.sqlite3"

    def same_triggers(db: Database) -> None:  # as 0001 made them: 0005 dropped and remade them
        with sqlite3.connect(path) as connection:
            triggers = dict(
                connection.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
                ).fetchall()
            )
        assert triggers == {
            "audit_events_no_delete": "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON "
            "audit_events BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
            "audit_events_no_update": "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON "
            "audit_events BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
        }

    _migrated_from_0004(str(path), tmp_path / "masks", same_triggers)


def test_migration_backfills_the_chain_on_postgres(postgres_server, tmp_path: Path) -> None:
    name = postgres_server.create_database()

    def same_triggers(db: Database) -> None:
        with db.reading() as session:
            triggers = session.execute(
                text(
                    "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
                    " AND tgrelid = 'audit_events'::regclass ORDER BY tgname"
                )
            ).all()
        assert [t[0] for t in triggers] == ["audit_events_no_change", "audit_events_no_truncate"]
        assert "BEFORE DELETE OR UPDATE" in triggers[0][1] and "FOR EACH ROW" in triggers[0][1]
        assert "BEFORE TRUNCATE" in triggers[1][1]

    try:
        _migrated_from_0004(postgres_server.url_for(name), tmp_path / "masks", same_triggers)
    finally:
        postgres_server.drop_database(name)


def test_migration_downgrades_and_upgrades_again(sqlite_db: Database) -> None:
    from alembic import command

    from meddiag_desktop.db.migrate import alembic_config

    reviewed_and_signed_case(sqlite_db)
    with sqlite_db.engine.connect() as connection:
        # As migrate.upgrade does: batch migrations recreate tables, which foreign keys forbid.
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")
        with connection.begin():
            command.downgrade(alembic_config(connection), BEFORE_CHAIN)
    with sqlite_db.reading() as session:
        columns = {r[1] for r in session.execute(text("PRAGMA table_info(audit_events)"))}
    assert "row_hash" not in columns
    sqlite_db.close()
    with Database.open(DatabaseSettings(url=str(sqlite_db.sqlite_path))) as again:
        assert verify_audit_chain(again).intact

"""Engine settings per connection, URLs and the default location, units of work."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from meddiag_desktop.db import errors
from meddiag_desktop.db.engine import (
    Database,
    DatabaseSettings,
    default_database_path,
    resolve_url,
)
from meddiag_desktop.db.records import Backend


def test_every_connection_gets_the_durable_settings(sqlite_db: Database) -> None:
    connections = [sqlite_db.engine.connect() for _ in range(3)]  # three pooled connections
    try:
        for connection in connections:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
            assert pragma == {
                "journal_mode": "wal",
                "synchronous": 2,  # FULL
                "foreign_keys": 1,
                "busy_timeout": 10000,
            }
    finally:
        for connection in connections:
            connection.close()


def test_write_units_take_the_write_lock_up_front(sqlite_db: Database) -> None:
    with sqlite_db.writing() as session:
        # In a BEGIN IMMEDIATE transaction a second writer cannot start, even before we wrote.
        other = Database.open(
            DatabaseSettings(url=str(sqlite_db.sqlite_path), busy_timeout_s=0.05, migrate=False)
        )
        try:
            with pytest.raises(errors.DatabaseLockedError, match="busy"), other.writing() as s:
                s.execute(text("SELECT 1"))
            with other.reading() as reader:  # readers are never blocked (WAL)
                assert reader.execute(text("SELECT count(*) FROM cases")).scalar() == 0
        finally:
            other.close()
        session.execute(text("SELECT 1"))


def test_a_failed_unit_of_work_is_rolled_back(sqlite_db: Database) -> None:
    with pytest.raises(RuntimeError), sqlite_db.writing() as session:
        session.execute(
            text(
                "INSERT INTO users (username, display_name, role, active, "
                "created_at) VALUES ('x', '', 'admin', 1, '2024-01-01')"
            )
        )
        raise RuntimeError("something went wrong after the insert")
    with sqlite_db.reading() as session:
        assert session.execute(text("SELECT count(*) FROM users")).scalar() == 0


def test_urls_paths_and_the_default_location(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MEDDIAG_DB", raising=False)
    monkeypatch.setattr("meddiag_desktop.db.engine.user_data_dir", lambda: tmp_path / "data")
    assert default_database_path() == tmp_path / "data" / "meddiag.sqlite3"
    assert resolve_url(None).database == str(tmp_path / "data" / "meddiag.sqlite3")
    assert resolve_url("rel/x.db").database == str(Path("rel/x.db").resolve())
    assert resolve_url(f"sqlite:///{tmp_path}/y.db").database == f"{tmp_path}/y.db"
    postgres = resolve_url("postgresql://me:secret@db.example/meddiag")
    assert postgres.drivername == "postgresql+psycopg" and postgres.password == "secret"
    monkeypatch.setenv("MEDDIAG_DB", str(tmp_path / "env.db"))
    assert resolve_url(None).database == str(tmp_path / "env.db")
    with pytest.raises(errors.CaseDatabaseError, match="unsupported database URL"):
        resolve_url("mysql://x@y/z")


def test_default_database_and_masks_live_in_the_user_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MEDDIAG_DB", raising=False)
    monkeypatch.setattr("meddiag_desktop.db.engine.user_data_dir", lambda: tmp_path / "data")
    with Database.open(DatabaseSettings(actor="tester")) as db:
        assert db.sqlite_path == tmp_path / "data" / "meddiag.sqlite3"
        assert db.masks_dir == tmp_path / "data" / "masks"
        assert db.backend is Backend.SQLITE and db.actor == "tester"
        assert db.acting_as("dr_a").actor == "dr_a" and db.actor == "tester"
    assert (tmp_path / "data" / "meddiag.sqlite3").is_file()


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(errors.DatabaseCorruptError, match="not a MedDiag case database"):
        Database.open(DatabaseSettings(url=str(path)))


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(errors.DatabaseAccessError, match="cannot reach the database server"):
        Database.open(DatabaseSettings(url="postgresql+psycopg://nobody@127.0.0.1:9/none"))

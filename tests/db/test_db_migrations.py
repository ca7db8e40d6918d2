"""Alembic migrations: upgrade from the first revision with data, backups, schema == models."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import db_fakes
import pytest
from sqlalchemy import inspect, text

from meddiag_desktop.db import errors
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.migrate import current_revision, schema_revision, upgrade
from meddiag_desktop.db.migrations import HEAD, REVISIONS
from meddiag_desktop.db.records import WorklistOrder, WorklistQuery
from meddiag_desktop.db.schema import WORKLIST_ORDER_INDEXES, Base, autogenerate_filter
from meddiag_desktop.db.worklist import list_cases

FIRST = REVISIONS[0]


def open_at(url: str, revision: str, masks: Path) -> Database:
    database = Database.open(
        DatabaseSettings(url=url, migrate=False, masks_dir=masks, actor="old app")
    )
    upgrade(database, revision)
    return database


def add_case_at_first_revision(database: Database) -> None:
    """Rows as the first release wrote them (raw SQL: today's models are newer)."""
    with database.writing() as session:
        run = session.execute
        run(
            text(
                "INSERT INTO patients (id, dicom_patient_id, name, name_folded, "
                "patient_id_folded, birth_date, sex, created_at) VALUES "
                "(1, 'P1', 'OLD^PATIENT', 'old patient', 'p1', '', '', '2024-01-01')"
            )
        )
        run(
            text(
                "INSERT INTO studies (id, patient_fk, study_uid, study_date, description, "
                "institution, created_at) VALUES (1, 1, '1.2', '2023-05-06', 'CT THORAX', "
                "'ST ELSEWHERE', '2024-01-01')"
            )
        )
        run(
            text(
                "INSERT INTO series (id, study_fk, identity, series_key, series_uid, kind, "
                "modality, description, series_number, series_date, manufacturer, "
                "manufacturer_model, size_x, size_y, size_z, spacing_x_mm, spacing_y_mm, "
                "spacing_z_mm, location, files, file_count, files_bytes, fingerprint, "
                "imported_at, files_seen_at) VALUES (1, 1, 'dicom:1.2.3', '1.2.3', '1.2.3', "
                "'volume', 'CT', 'LUNG KERNEL', '2', '', '', '', 1, 1, 1, 1, 1, 1, '/x', "
                "'[]', 0, 0, '', '2024-01-01', '2024-01-01')"
            )
        )
        run(
            text(
                "INSERT INTO cases (id, series_fk, patient_fk, status, study_date, modality, "
                "created_at, updated_at) VALUES (1, 1, 1, 'new', '2023-05-06', 'CT', "
                "'2024-01-01', '2024-01-01')"
            )
        )


def test_revisions_listed_match_the_scripts() -> None:
    from alembic.script import ScriptDirectory

    from meddiag_desktop.db.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    ordered = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(ordered) == REVISIONS and scripts.get_current_head() == HEAD
    assert len(REVISIONS) >= 2


def test_upgrade_from_the_first_revision_keeps_data_and_backs_up(tmp_path: Path) -> None:
    path = tmp_path / "meddiag.sqlite3"
    old = open_at(str(path), FIRST, tmp_path / "masks")
    add_case_at_first_revision(old)
    assert schema_revision(old) == FIRST
    old.close()

    with Database.open(DatabaseSettings(url=str(path), actor="new app")) as db:
        assert schema_revision(db) == HEAD
        found = list_cases(db, WorklistQuery(text="elsewhere"))  # search text filled in
        assert [s.patient_name for s in found.items] == ["OLD^PATIENT"]
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("cases")}
        assert {"ix_cases_worklist_status", "ix_cases_worklist_date"} <= indexes
        assert "reviewed_masks" in inspect(db.engine).get_table_names()  # saved mask edits
        with db.reading() as session:  # 0004: the worklist's sort keys filled in
            keys = session.execute(
                text(
                    "SELECT patient_name_key, patient_id_key, status_rank, finding_count FROM cases"
                )
            ).all()
        assert [tuple(k) for k in keys] == [("old patient", "p1", 0, 0)]
        by_name = list_cases(db, WorklistQuery(order=WorklistOrder.PATIENT_NAME))
        assert [s.patient_name for s in by_name.items] == ["OLD^PATIENT"]
        assert import_series(db, db_fakes.series(2)).created  # and the app works on it
    backups = list((tmp_path / "backups").glob("meddiag-before-*.sqlite3"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == (FIRST,)
        assert copy.execute("SELECT count(*) FROM cases").fetchone() == (1,)


def test_a_new_database_needs_no_backup(tmp_path: Path) -> None:
    Database.open(DatabaseSettings(url=str(tmp_path / "new.sqlite3"))).close()
    assert not (tmp_path / "backups").exists()


def test_a_newer_schema_is_refused(sqlite_db: Database) -> None:
    with sqlite_db.writing() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    with pytest.raises(errors.SchemaVersionError, match="newer MedDiag Desktop"):
        Database.open(DatabaseSettings(url=str(sqlite_db.sqlite_path)))


def test_migrations_leave_foreign_keys_on(tmp_path: Path) -> None:
    db = open_at(str(tmp_path / "m.sqlite3"), FIRST, tmp_path / "masks")
    upgrade(db, "head")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.close()


def _model_differences(database: Database) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with database.engine.connect() as connection:
        include = autogenerate_filter(connection.dialect.name)
        options = {"compare_type": True, "include_object": include}
        context = MigrationContext.configure(connection, opts=options)
        return compare_metadata(context, Base.metadata)


def test_models_match_the_migrated_schema_on_sqlite(sqlite_db: Database) -> None:
    assert _model_differences(sqlite_db) == []


def test_postgres_upgrade_from_the_first_revision(postgres_server, tmp_path: Path) -> None:
    name = postgres_server.create_database()
    try:
        url = postgres_server.url_for(name)
        old = open_at(url, FIRST, tmp_path / "masks")
        add_case_at_first_revision(old)
        with old.writing() as session:  # ids were given explicitly: move the sequences on
            for table in ("patients", "studies", "series", "cases"):
                session.execute(text(f"SELECT setval('{table}_id_seq', 10)"))
        old.close()
        with Database.open(
            DatabaseSettings(url=url, masks_dir=tmp_path / "masks", actor="new")
        ) as db:
            with db.reading() as session:
                assert current_revision(session.connection()) == HEAD
            assert list_cases(db, WorklistQuery(text="elsewhere")).total == 1
            assert import_series(db, db_fakes.series(2)).created
            assert _model_differences(db) == []
            with db.reading() as session:
                definitions = dict(
                    session.execute(
                        text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename='cases'")
                    ).all()
                )
            for name in WORKLIST_ORDER_INDEXES:
                assert definitions[name].endswith("study_date DESC NULLS LAST, id DESC)")
    finally:
        postgres_server.drop_database(name)

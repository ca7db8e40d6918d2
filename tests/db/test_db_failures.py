"""Full disk, read-only folders and a locked database: a clear error, and nothing committed lost."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import db_fakes
import pytest
from sqlalchemy import event

from meddiag_desktop.db import errors
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.integrity import check_database, remove_orphans
from meddiag_desktop.db.masks import files_in
from meddiag_desktop.db.records import CaseStatus, MaskProblemKind
from meddiag_desktop.db.runs import load_mask, store_inference
from meddiag_desktop.db.worklist import list_cases


def committed_case(db: Database, index: int = 1) -> tuple[int, int]:
    case_id = import_series(db, db_fakes.series(index)).case_id
    volume = db_fakes.volume(index)
    return case_id, store_inference(db, case_id, volume, db_fakes.result(volume, seed=index))


def assert_intact(db: Database, case_id: int, run_id: int) -> None:
    detail = get_case(db, case_id)
    assert detail.current_run is not None and detail.current_run.run_id == run_id
    assert len(detail.current_run.findings) == 3
    load_mask(db, run_id)


def test_disk_full_while_writing_the_mask(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, run_id = committed_case(sqlite_db)
    new_case = import_series(sqlite_db, db_fakes.series(2)).case_id

    def no_space(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("meddiag_desktop.db.masks.write_label_map", no_space)
    volume = db_fakes.volume(2)
    with pytest.raises(errors.MaskWriteError, match=r"No space left on device.*not saved"):
        store_inference(sqlite_db, new_case, volume, db_fakes.result(volume))
    assert get_case(sqlite_db, new_case).runs == ()
    assert get_case(sqlite_db, new_case).summary.status is CaseStatus.NEW
    assert_intact(sqlite_db, case_id, run_id)
    assert check_database(sqlite_db).ok


def test_database_full_keeps_what_was_committed(sqlite_db: Database) -> None:
    case_id, run_id = committed_case(sqlite_db)
    with sqlite_db.reading() as session:
        pages = session.connection().exec_driver_sql("PRAGMA page_count").scalar()
    sqlite_db.engine.dispose()  # new connections get the size limit below

    @event.listens_for(sqlite_db.engine, "connect")
    def _limit(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 6}")

    stored: list[int] = []
    with pytest.raises(errors.StorageFullError, match=r"full.*earlier work is intact"):
        for index in range(2, 200):
            stored.append(committed_case(sqlite_db, index)[0])
    event.remove(sqlite_db.engine, "connect", _limit)
    sqlite_db.engine.dispose()
    assert_intact(sqlite_db, case_id, run_id)
    for stored_case in stored:
        assert get_case(sqlite_db, stored_case).current_run is not None
    report = check_database(sqlite_db)
    assert report.ok, report  # the failed run's mask file was removed again: no orphan
    committed_case(sqlite_db, 500)  # and with space again, work goes on


def test_locked_database_is_a_clear_error_and_loses_nothing(sqlite_db: Database) -> None:
    case_id, run_id = committed_case(sqlite_db)
    assert sqlite_db.sqlite_path is not None
    impatient = Database.open(
        DatabaseSettings(url=str(sqlite_db.sqlite_path), busy_timeout_s=0.2, actor="second")
    )
    blocker = sqlite3.connect(sqlite_db.sqlite_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        started = time.monotonic()
        with pytest.raises(errors.DatabaseLockedError, match=r"busy.*try again"):
            import_series(impatient, db_fakes.series(2))
        assert time.monotonic() - started < 5
        volume = db_fakes.volume(1)
        with pytest.raises(errors.DatabaseLockedError):
            store_inference(impatient, case_id, volume, db_fakes.result(volume, seed=9))
        assert list_cases(impatient).total == 1  # reading still works while locked
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert import_series(impatient, db_fakes.series(2)).created  # the lock is gone: it works
    impatient.close()
    assert_intact(sqlite_db, case_id, run_id)
    assert len(get_case(sqlite_db, case_id).runs) == 1
    assert check_database(sqlite_db).ok  # the refused run's mask file did not stay behind


def test_read_only_database_file(sqlite_db: Database) -> None:
    case_id, run_id = committed_case(sqlite_db)
    path = sqlite_db.sqlite_path
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with Database.open(DatabaseSettings(url=url)) as read_only:
        assert get_case(read_only, case_id).current_run is not None
        with pytest.raises(errors.DatabaseAccessError, match="read-only"):
            import_series(read_only, db_fakes.series(2))
    assert_intact(sqlite_db, case_id, run_id)


def _without_root_powers() -> list[str]:
    """A command prefix under which file permissions apply, even when the tests run as root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root without setpriv (util-linux): cannot drop the capability "
            "that lets root ignore a read-only folder"
        )
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def _try_writing(database: Path, masks: Path) -> dict:
    script = Path(__file__).with_name("read_only_writer.py")
    finished = subprocess.run(
        [*_without_root_powers(), sys.executable, str(script), str(database), str(masks)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_read_only_folders(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    path = folder / "meddiag.sqlite3"
    with Database.open(DatabaseSettings(url=str(path), masks_dir=folder / "masks")) as db:
        case_id, run_id = committed_case(db)
    read_only = stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
    try:
        # 1. The whole folder is read-only: the database cannot even be opened for writing.
        folder.chmod(read_only)
        outcome = _try_writing(path, folder / "masks")
        assert outcome["done"] == [] and outcome["error"] == "DatabaseAccessError"
        assert str(path) in outcome["message"] and "read-only" in outcome["message"]
        # 2. Only the masks folder is read-only: the case imports, the run is refused whole.
        folder.chmod(0o755)
        (folder / "masks").chmod(read_only)
        outcome = _try_writing(path, folder / "masks")
        assert outcome["done"] == ["open", "import"] and outcome["error"] == "MaskWriteError"
        assert "Permission denied" in outcome["message"]
    finally:
        folder.chmod(0o755)
        (folder / "masks").chmod(0o755)
    with Database.open(DatabaseSettings(url=str(path), masks_dir=folder / "masks")) as db:
        assert_intact(db, case_id, run_id)
        refused = [s for s in list_cases(db).items if s.case_id != case_id]
        assert [get_case(db, s.case_id).runs for s in refused] == [()]
        assert check_database(db).ok


def test_orphan_mask_files_are_reported_and_removed_when_old(sqlite_db: Database) -> None:
    """What a crash between writing a mask and committing its run leaves behind."""
    committed_case(sqlite_db)
    masks = sqlite_db.masks_dir
    orphan = masks / "0123456789abcdef0123456789abcdef.nii.gz"
    orphan.write_bytes(b"a mask whose run never committed")
    temporary = masks / ".feedbeef.partial.nii.gz"
    temporary.write_bytes(b"half a mask")
    report = check_database(sqlite_db)
    assert not report.ok
    assert [p.relative_path for p in report.problems(MaskProblemKind.ORPHAN)] == [orphan.name]
    assert report.problems(MaskProblemKind.LEFTOVER_TEMPORARY)[0].relative_path == temporary.name
    assert remove_orphans(sqlite_db, report) == ()  # too young: may be a save in progress
    an_hour_ago = time.time() - 3600
    for path in (orphan, temporary):
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert set(remove_orphans(sqlite_db, report)) == {orphan.name, temporary.name}
    assert check_database(sqlite_db).ok
    assert len(files_in(masks)[0]) == 1

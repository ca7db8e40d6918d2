"""Who can read the files: the data folder, the database (with its -wal/-shm), the masks, the
backups and the exports are the owner's alone (0700 folders, 0600 files) whatever the umask, and
what an older version left readable by others is fixed at the next open, saying so."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import db_fakes
import pytest

from meddiag_desktop.cli import main
from meddiag_desktop.db.backup import backup_database
from meddiag_desktop.db.engine import DEFAULT_FILE_NAME, MASKS_FOLDER, Database, DatabaseSettings
from meddiag_desktop.db.importing import import_path
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.export.write_outputs import export_case
from meddiag_desktop.scans import load, write_volume
from meddiag_desktop.user_folders import secure_user_data_dir, user_data_dir

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user data folder under ``tmp_path`` (platformdirs reads XDG_DATA_HOME)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MEDDIAG_DB", raising=False)
    return user_data_dir()


def analysed_case(db: Database, folder: Path) -> int:
    """A case from a real scan file (so it can be exported), with a stored model run."""
    folder.mkdir(parents=True, exist_ok=True)
    write_volume(db_fakes.volume(1), folder / "ct.nii.gz")
    case_id = import_path(db, folder / "ct.nii.gz")[0].result.case_id
    volume = load(folder / "ct.nii.gz")
    store_inference(db, case_id, volume, db_fakes.result(volume, 2, seed=1))
    return case_id


def test_a_new_database_and_its_masks_are_owner_only(umask: int, data_home: Path) -> None:
    assert not data_home.exists()
    with Database.open(DatabaseSettings(actor="tester")) as db:  # the default location
        path = data_home / DEFAULT_FILE_NAME
        assert db.sqlite_path == path and db.permission_fixes == ()
        analysed_case(db, data_home.parent / "scan")
        assert mode(data_home) == 0o700
        for name in (DEFAULT_FILE_NAME, f"{DEFAULT_FILE_NAME}-wal", f"{DEFAULT_FILE_NAME}-shm"):
            assert mode(data_home / name) == 0o600, name  # SQLite gives -wal/-shm the file's mode
        masks = data_home / MASKS_FOLDER
        assert mode(masks) == 0o700 and mode(masks / ".pending") == 0o700
        files = [p for p in masks.iterdir() if p.is_file()]
        assert files and all(mode(p) == 0o600 for p in files)
    assert secure_user_data_dir() == []


def test_folders_made_for_a_database_elsewhere_are_0700_and_the_users_own_are_kept(
    umask: int, tmp_path: Path
) -> None:
    mine = tmp_path / "shared"
    mine.mkdir()
    os.chmod(mine, 0o755)  # a folder the user chose: the app does not change it
    Database.open(DatabaseSettings(url=str(mine / "cases.sqlite3"))).close()
    assert mode(mine) == 0o755 and mode(mine / "cases.sqlite3") == 0o600

    Database.open(DatabaseSettings(url=str(tmp_path / "new" / "deeper" / "c.sqlite3"))).close()
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "deeper") == 0o700


def test_readable_files_of_an_older_version_are_fixed_with_a_message(
    data_home: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = os.umask(0o022)
    try:
        with Database.open(DatabaseSettings(actor="tester")) as db:
            analysed_case(db, data_home.parent / "scan")
        path = data_home / DEFAULT_FILE_NAME
        masks = data_home / MASKS_FOLDER
        [mask] = [p for p in masks.iterdir() if p.is_file()]
        for where, old in ((data_home, 0o755), (path, 0o644), (masks, 0o755), (mask, 0o644)):
            os.chmod(where, old)  # as the app made them before
        with caplog.at_level(logging.WARNING):
            assert main(["db", "info"]) == 0  # any command that opens the database
        err = capsys.readouterr().err.splitlines()
    finally:
        os.umask(previous)
    expected = [
        f"fixed permissions of {data_home}: was 0755, now 0700",
        f"fixed permissions of {path}: was 0644, now 0600",
        f"fixed permissions of {masks}: was 0755, now 0700",
        f"fixed permissions of {mask}: was 0644, now 0600",
    ]
    assert all(line in err for line in expected), err
    assert all(line in caplog.messages for line in expected)
    assert (mode(data_home), mode(path), mode(masks), mode(mask)) == (0o700, 0o600, 0o700, 0o600)

    with Database.open(DatabaseSettings()) as again:  # fixed once, silent after
        assert again.permission_fixes == ()
    assert main(["db", "info"]) == 0
    assert "fixed permissions" not in capsys.readouterr().err


def test_exports_and_backups_are_owner_only(umask: int, tmp_path: Path) -> None:
    with Database.open(DatabaseSettings(url=str(tmp_path / "db" / "cases.sqlite3"))) as db:
        case_id = analysed_case(db, tmp_path / "scan")
        result = export_case(db, case_id, tmp_path / "exports" / f"case-{case_id}")
        assert result.files and all(mode(p) == 0o600 for p in result.files)
        assert mode(tmp_path / "exports") == 0o700 and mode(result.out_dir) == 0o700

        chosen = tmp_path / "to-the-referrer"
        chosen.mkdir()
        os.chmod(chosen, 0o755)  # the user's own folder keeps its mode; the files are private
        again = export_case(db, case_id, chosen, outputs=("csv", "json"))
        assert mode(chosen) == 0o755 and all(mode(p) == 0o600 for p in again.files)

        backup = backup_database(db)
        assert mode(backup) == 0o700 and mode(backup / DEFAULT_FILE_NAME) == 0o600
        copied = [p for p in (backup / MASKS_FOLDER).iterdir() if p.is_file()]
        assert copied and all(mode(p) == 0o600 for p in copied)

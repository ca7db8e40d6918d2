"""The journal of mask saves in progress, on both backends: what a dead writer left is removed
at the next open, a live writer's file is neither removed nor reported, and the old orphans that
no journal explains stay ``db check``'s to report."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import db_fakes
import pytest

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import recent_events
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.integrity import check_database
from meddiag_desktop.db.masks import mask_written
from meddiag_desktop.db.pending_masks import JOURNAL_FOLDER
from meddiag_desktop.db.records import AuditAction, MaskProblemKind
from meddiag_desktop.db.runs import load_mask, store_inference

# Stores one run, then dies (os._exit: no clean-up of any kind) inside the transaction of a
# second one, after its mask file is in place and its rows are sent, before the commit.
DYING_WRITER = textwrap.dedent(
    """
    import os, sys
    sys.path[:0] = sys.argv[3:]
    import db_fakes
    from meddiag_desktop.db.engine import Database, DatabaseSettings
    from meddiag_desktop.db.importing import import_series
    from meddiag_desktop.db.runs import store_inference
    from meddiag_desktop.db import runs

    settings = DatabaseSettings(url=sys.argv[1], masks_dir=__import__("pathlib").Path(sys.argv[2]))
    db = Database.open(settings)
    case_id = import_series(db, db_fakes.series(1)).case_id
    volume = db_fakes.volume(1)
    print(store_inference(db, case_id, volume, db_fakes.result(volume, 2, seed=1)), flush=True)
    original = runs._after_run

    def die_before_commit(session, *args):
        original(session, *args)
        session.flush()
        os._exit(0)

    runs._after_run = die_before_commit
    store_inference(db, case_id, volume, db_fakes.result(volume, 1, seed=2))
    """
)


def mask_files(masks: Path) -> set[str]:
    return {p.relative_to(masks).as_posix() for p in masks.rglob("*") if p.is_file()}


def die_in_a_save(url: str, masks: Path) -> int:
    """Run DYING_WRITER against ``url``; the id of the run it committed before dying."""
    tests = Path(__file__).parent
    died = subprocess.run(
        [sys.executable, "-c", DYING_WRITER, url, str(masks), str(tests), str(tests.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == 0, died.stderr
    return int(died.stdout.split()[0])


def test_a_dead_writers_uncommitted_mask_is_removed_at_the_next_open(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    url = db.url.render_as_string(hide_password=False)
    run_id = die_in_a_save(url, db.masks_dir)
    committed = load_mask(db, run_id)  # the first run, whole
    left = mask_files(db.masks_dir)
    uncommitted = [n for n in left if n.endswith(".nii.gz") and "/" not in n]
    assert len(uncommitted) == 2 and any(n.startswith(f"{JOURNAL_FOLDER}/") for n in left)

    with caplog.at_level("INFO", logger="meddiag_desktop.db.pending_masks"):
        reopened = Database.open(
            DatabaseSettings(url=url, masks_dir=db.masks_dir, actor="next morning")
        )
    with reopened:
        report = check_database(reopened)
        assert report.ok and report.masks_checked == 1
        kept = {n for n in mask_files(db.masks_dir) if "/" not in n}
        assert len(kept) == 1 and load_mask(reopened, run_id).array_zyx.tolist() == (
            committed.array_zyx.tolist()
        )
        (removed,) = set(uncommitted) - kept
        lines = [r.getMessage() for r in caplog.records if "interrupted" in r.getMessage()]
        assert len(lines) == 1 and removed in lines[0] and "never committed" in lines[0]
        event = recent_events(reopened, limit=1)[0]
        assert event.action is AuditAction.MASK_FILES_REMOVED
        assert event.details["files"] == [removed]
    assert mask_files(db.masks_dir) == kept


def test_a_live_save_is_neither_removed_nor_reported(db: Database) -> None:
    case_id = import_series(db, db_fakes.series(1)).case_id
    volume = db_fakes.volume(1)
    store_inference(db, case_id, volume, db_fakes.result(volume, 1, seed=1))
    labels = db_fakes.result(volume, 1, seed=2).segmentation.labels_zyx
    settings = DatabaseSettings(
        url=db.url.render_as_string(hide_password=False), masks_dir=db.masks_dir
    )
    with (
        pytest.raises(errors.CaseStateError, match="given up"),
        mask_written(db.masks_dir, volume, labels, database=db.display_url) as mask,
    ):
        # Another window of the same app opens the database meanwhile.
        with Database.open(settings) as other:
            assert (db.masks_dir / mask.relative_path).is_file()
            assert check_database(other).ok
        raise errors.CaseStateError("the save was given up")
    assert not (db.masks_dir / mask.relative_path).exists()  # removed by its own save
    assert not [n for n in mask_files(db.masks_dir) if "/" in n]  # its journal entry is gone


def test_an_orphan_no_journal_explains_is_still_reported(db: Database) -> None:
    """A file put there by hand (or left by a deleted case) is not healed away at open."""
    db.masks_dir.mkdir(parents=True, exist_ok=True)
    stray = db.masks_dir / "0123456789abcdef0123456789abcdef.nii.gz"
    stray.write_bytes(b"nobody's mask")
    settings = DatabaseSettings(
        url=db.url.render_as_string(hide_password=False), masks_dir=db.masks_dir
    )
    with Database.open(settings) as reopened:
        assert stray.is_file()
        report = check_database(reopened)
        assert [p.relative_path for p in report.problems(MaskProblemKind.ORPHAN)] == [stray.name]


def test_a_shared_masks_folder_heals_only_the_opened_databases_saves(tmp_path: Path) -> None:
    """Only the database a save was for can say whether its file committed."""
    masks = tmp_path / "masks"  # shared, as the default folder is by SQLite and PostgreSQL
    first, second = str(tmp_path / "a.sqlite3"), str(tmp_path / "b.sqlite3")
    die_in_a_save(first, masks)
    left = mask_files(masks)
    with Database.open(DatabaseSettings(url=second, masks_dir=masks)):
        assert mask_files(masks) == left  # not its save: left alone
    with Database.open(DatabaseSettings(url=first, masks_dir=masks)) as db:
        assert check_database(db).ok and len(mask_files(masks)) == 1

"""Crash safety and concurrent writers, with real processes and real SIGKILLs.

(a) A writer is killed at random moments, 50 times, against the same database. Afterwards
    ``meddiag db check`` passes (exit 0, without ``--remove-orphans``: opening the database
    removed what the interrupted saves left), every case the writer reported committed is
    complete (run, findings, mask file with the stored sha256), no half-written case is visible
    and no file lies in the masks folder that no row refers to.
(b) A save (a model run, or an edited mask) is killed at each point of its way to disk: before
    any mask byte, inside SimpleITK's write, after the file is in place but before the commit,
    and after the commit. The same holds, and ``db check`` names what it removed; while the
    writer is only stopped (alive), its file is neither removed nor called damage.
(c) Two writers write at once: both finish, nothing is lost or corrupted.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import db_fakes
import numpy as np
import pytest
from crash_writer import EDITOR, POINTS, findings_for

from meddiag_desktop.db.audit import recent_events
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.integrity import check_database, stored_mask_paths
from meddiag_desktop.db.records import (
    AuditAction,
    CaseStatus,
    ReviewStatus,
    RunOutcome,
    WorklistQuery,
)
from meddiag_desktop.db.reviewed_masks import list_reviewed_masks, load_reviewed_mask
from meddiag_desktop.db.runs import load_mask
from meddiag_desktop.db.worklist import list_cases

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 50


class Writers:
    """Drives crash_writer.py: forks writer children on request and reports their lines."""

    def __init__(self, database: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.committed: list[tuple[int, int, int]] = []
        self.errors: list[str] = []
        self.expect("ready", timeout=60)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut by a kill is not a report
                self.lines.put(line.strip())

    def expect(self, prefix: str, timeout: float = 30) -> str:
        """The next line starting with ``prefix``, collecting commit reports on the way."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line.startswith("committed "):
                case_id, run_id, index = (int(v) for v in line.split()[1:])
                self.committed.append((case_id, run_id, index))
            elif line.startswith("error "):
                self.errors.append(line)
            if line.startswith(prefix):
                return line

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def fork(self, start: int, count: int = 0) -> int:
        self.send(f"fork {start} {count}")
        return int(self.expect("pid ").split()[1])

    def pause(self, start: int, point: str, kind: str) -> int:
        """A child that commits case ``start`` and stops itself at ``point`` of one more save."""
        self.send(f"pause {start} {point} {kind}")
        pid = int(self.expect("pid ").split()[1])
        self.expect(f"paused {pid} {point}", timeout=60)
        return pid

    def wait(self, pid: int, timeout: float = 60) -> int:
        self.send(f"wait {pid}")
        return int(self.expect(f"exited {pid} ", timeout).split()[2])

    def drain(self) -> None:
        while True:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                return
            self.lines.put(line)
            self.expect(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=10)


def meddiag_db_check(database: Path) -> subprocess.CompletedProcess[str]:
    """The real ``meddiag db check`` in its own process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "meddiag_desktop.cli", "db", "check", "--db", str(database)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def unreferenced_files(database: Path) -> list[Path]:
    """Every file under the masks folder that no committed row refers to."""
    masks = database.parent / "masks"
    with (
        Database.open(DatabaseSettings(url=str(database), migrate=False)) as db,
        db.reading() as session,
    ):
        referenced = {masks / name for name in stored_mask_paths(session)}
    return sorted(p for p in masks.rglob("*") if p.is_file() and p not in referenced)


def assert_every_case_is_whole(db: Database, committed: list[tuple[int, int, int]]) -> int:
    """Each reported case complete; every visible case either whole or not yet analysed."""
    reported = {case_id for case_id, _, _ in committed}
    for case_id, run_id, index in committed:
        detail = get_case(db, case_id)
        run = detail.current_run
        assert run is not None and run.run_id == run_id, f"case {case_id} lost its run"
        assert len(run.findings) == findings_for(index)
        mask = load_mask(db, run_id)  # checks sha256 and geometry
        expected = db_fakes.result(db_fakes.volume(index), 1, seed=index).segmentation.labels_zyx
        assert np.array_equal(mask.array_zyx, expected)
    unanalysed = 0
    everything = list_cases(db, WorklistQuery(page_size=1000))
    assert everything.total < 1000
    for summary in everything.items:
        detail = get_case(db, summary.case_id)
        if not detail.runs:  # killed between the import and the run's commit
            assert summary.status is CaseStatus.NEW and summary.case_id not in reported
            unanalysed += 1
            continue
        assert summary.status is CaseStatus.ANALYSED
        assert [r.outcome for r in detail.runs] == [RunOutcome.SUCCEEDED]
        run = detail.runs[0]
        index = int(detail.summary.patient_id.removeprefix("PID"))
        assert len(run.findings) == findings_for(index), "a run without all its findings"
        assert run.mask is not None
        load_mask(db, run.run_id)
    return unanalysed


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_loses_no_committed_case(tmp_path: Path) -> None:
    database = tmp_path / "meddiag.sqlite3"
    writers = Writers(database)
    rng = random.Random(20261129)
    try:
        for round_number in range(KILLS):
            pid = writers.fork(start=round_number * 1000)
            # The first kills land while the first child migrates the new database, some later
            # ones while a child opens it, most while it writes.
            early = round_number < 3 or rng.random() < 0.2
            time.sleep(rng.uniform(0.0, 0.05) if early else rng.uniform(0.05, 0.4))
            os.kill(pid, signal.SIGKILL)
            code = writers.wait(pid)
            assert code in (-signal.SIGKILL, 0), writers.errors
        writers.drain()
    finally:
        writers.close()
    assert not writers.errors, writers.errors
    assert len(writers.committed) >= KILLS // 5, "the writer hardly got to write; kill later"

    checked = meddiag_db_check(database)  # its open removes what the kills left
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip().endswith("OK")
    assert unreferenced_files(database) == []
    with Database.open(DatabaseSettings(url=str(database), actor="checker")) as db:
        report = check_database(db)
        assert report.ok, report
        unanalysed = assert_every_case_is_whole(db, writers.committed)
        assert unanalysed <= KILLS
        # Each child's open (and the check's) removed what the kill before it left.
        healed = [
            e.details["files"]
            for e in recent_events(db, limit=10_000)
            if e.action is AuditAction.MASK_FILES_REMOVED
        ]
        assert healed, "no kill landed between a mask write and its commit; kill later"
        print(
            f"\n{len(writers.committed)} cases committed across {KILLS} kills; "
            f"{unanalysed} imported but not analysed; {len(healed)} opens removed "
            f"{sum(len(f) for f in healed)} file(s) left by interrupted saves"
        )


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["run", "edit"])
@pytest.mark.parametrize("point", POINTS)
def test_a_save_killed_at_each_point_heals_at_the_next_open(
    tmp_path: Path, point: str, kind: str
) -> None:
    database = tmp_path / "meddiag.sqlite3"
    writers = Writers(database)
    try:
        pid = writers.pause(0, point, kind)
        left = unreferenced_files(database)
        if point == "before_commit":
            assert any(p.name.endswith(".nii.gz") for p in left), "no file written yet?"
            # Stopped, not dead: its file is a save in progress, neither damage nor removed.
            live = meddiag_db_check(database)
            assert live.returncode == 0, live.stdout + live.stderr
            assert all(p.is_file() for p in left)
        os.kill(pid, signal.SIGKILL)
        assert writers.wait(pid) == -signal.SIGKILL
    finally:
        writers.close()
    assert not writers.errors, writers.errors
    ((case_id, run_id, index),) = writers.committed

    checked = meddiag_db_check(database)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip().endswith("OK")
    for path in left:
        if path.name.endswith(".nii.gz") and point != "after_commit":
            assert path.name in checked.stderr, checked.stderr  # named when removed
    assert unreferenced_files(database) == []
    with Database.open(DatabaseSettings(url=str(database), actor="checker")) as db:
        assert check_database(db).ok
        first = get_case(db, case_id)  # the committed case, untouched
        assert first.current_run is not None and first.current_run.run_id == run_id
        expected = db_fakes.result(db_fakes.volume(index), 1, seed=index).segmentation.labels_zyx
        assert np.array_equal(load_mask(db, run_id).array_zyx, expected)
        committed = point == "after_commit"
        if kind == "edit":
            edits = list_reviewed_masks(db, case_id)
            assert len(edits) == (1 if committed else 0)
            status = first.runs[0].findings[0].review_status
            assert status is (ReviewStatus.EDITED if committed else ReviewStatus.PENDING)
            if committed:
                assert edits[0].author == EDITOR
                assert load_reviewed_mask(db, edits[0].reviewed_mask_id).array_zyx[2, 5, 4] == 1
        else:
            cases = list_cases(db, WorklistQuery(page_size=10)).items
            assert len(cases) == 2
            second = get_case(db, next(s.case_id for s in cases if s.case_id != case_id))
            assert len(second.runs) == (1 if committed else 0)
            if committed:
                load_mask(db, second.runs[0].run_id)


@pytest.mark.slow
def test_two_writers_at_once(tmp_path: Path) -> None:
    database = tmp_path / "meddiag.sqlite3"
    Database.open(DatabaseSettings(url=str(database))).close()  # migrate once, up front
    writers = Writers(database)
    try:
        # Both start with the same series (0..4): importing must stay idempotent under a race.
        first, second = writers.fork(0, 20), writers.fork(0, 20)
        assert (writers.wait(first), writers.wait(second)) == (0, 0), writers.errors
    finally:
        writers.close()
    assert not writers.errors
    assert len(writers.committed) == 40
    with Database.open(DatabaseSettings(url=str(database))) as db:
        assert check_database(db).ok
        cases = list_cases(db, WorklistQuery(page_size=100))
        assert cases.total == 20  # one case per series, whoever imported it first
        runs = sum(len(get_case(db, s.case_id).runs) for s in cases.items)
        assert runs == 40  # every run from both writers was kept

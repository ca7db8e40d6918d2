"""``meddiag db backup`` killed at varied moments: the backup is whole or absent, never half.

The real command runs in its own process and is SIGKILLed at moments spread over its work: a
few at random times from its start (mostly while it starts up), most after its first trace
appears in the backups folder (when it copies the database and the masks). After each kill the
destination is either absent or a backup that opens and passes ``db check`` with every mask of
the source; whatever a killed backup left beside it is never taken for a backup, and the next
backup clears it away.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import db_fakes
import numpy as np
import pytest
import shared_fakes

from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.integrity import check_database
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.domain import Segmentation, Volume

KILLS = 12
CASES = 40


def source_database(folder: Path) -> Path:
    """A database with CASES analysed cases, each with a mask of its own (~40 KB each)."""
    path = folder / "meddiag.sqlite3"
    with Database.open(DatabaseSettings(url=str(path), actor="tester")) as db:
        rng = np.random.default_rng(7)
        for index in range(CASES):
            metadata = db_fakes.metadata(index)
            series = shared_fakes.series_info(metadata, (), size_xyz=(96, 96, 24))
            case_id = import_series(db, series).case_id
            volume = Volume(
                np.zeros((24, 96, 96), dtype=np.int16),
                (0.8, 0.8, 2.0),
                (0.0, 0.0, 0.0),
                metadata=metadata,
            )
            labels = (rng.random(volume.shape_zyx) > 0.8).astype(np.uint8)
            segmentation = Segmentation(labels, {1: "nodule"}, {1: "#ff0000"})
            result = shared_fakes.FakeResult(segmentation, (shared_fakes.finding(1),))
            store_inference(db, case_id, volume, result)
    return path


def backup_command(source: Path, destination: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "meddiag_desktop.cli",
        "db",
        "backup",
        "--to",
        str(destination),
        "--db",
        str(source),
    ]


def looks_done(destination: Path) -> bool:
    """The destination holds the database and every mask file (by name, not checked)."""
    masks = destination / "masks"
    return (destination / "meddiag.sqlite3").is_file() and (
        masks.is_dir() and len(os.listdir(masks)) >= CASES
    )


def run_backup(
    source: Path, destination: Path, kill_after_trace_s: float | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Run a backup; with ``kill_after_trace_s``, SIGKILL it that long after anything new
    shows in the destination's folder. Returns the process and, for a run left alone, the
    seconds from its first trace until the destination looked done (the moments to kill in)."""
    parent = destination.parent
    before = set(os.listdir(parent))
    process = subprocess.Popen(
        backup_command(source, destination), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    started = time.monotonic()
    while set(os.listdir(parent)) == before:
        if process.poll() is not None:
            raise AssertionError(f"the backup ended without a trace: {process.stderr}")
        if time.monotonic() - started > 60:
            raise AssertionError("the backup left no trace in a minute")
    appeared = time.monotonic()
    if kill_after_trace_s is not None:
        time.sleep(kill_after_trace_s)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        return process, 0.0
    while not looks_done(destination) and process.poll() is None:
        pass
    done = time.monotonic() - appeared
    process.wait(timeout=120)
    return process, done


def kill_after_start(source: Path, destination: Path, delay_s: float) -> None:
    """SIGKILL a backup ``delay_s`` after it was started (mostly while Python starts up)."""
    process = subprocess.Popen(
        backup_command(source, destination),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay_s)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def assert_absent_or_complete(destination: Path, masks: int) -> bool:
    """True for a complete backup, False for none; fails for anything in between."""
    if not destination.exists():
        return False
    with Database.open(DatabaseSettings(url=str(destination / "meddiag.sqlite3"))) as copy:
        assert copy.masks_dir == destination / "masks"
        report = check_database(copy)
        problems = [f"{p.kind.value} {p.relative_path}" for p in report.mask_problems]
        assert report.ok, f"{destination}: {len(problems)} problem(s): {problems[:3]}"
        assert report.masks_checked == masks
    return True


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_backup_is_whole_or_absent(tmp_path: Path) -> None:
    source = source_database(tmp_path / "live")
    backups = tmp_path / "backups"
    backups.mkdir()

    whole, took_s = run_backup(source, backups / "measured")
    assert whole.returncode == 0, whole.stderr
    assert assert_absent_or_complete(backups / "measured", CASES)

    rng = random.Random(20261207)
    outcomes = {"absent": 0, "complete": 0}
    for kill in range(KILLS):
        destination = backups / f"kill-{kill:02d}"
        if kill < 2:
            kill_after_start(source, destination, rng.uniform(0.2, 1.5))
        else:  # spread over the copying, up to a little past the moment it was done
            fraction = (kill - 2 + rng.random()) / (KILLS - 2)
            run_backup(source, destination, kill_after_trace_s=fraction * took_s * 1.2)
        complete = assert_absent_or_complete(destination, CASES)
        outcomes["complete" if complete else "absent"] += 1
        # Nothing beside the backups may pass for one: every visible entry is a whole backup.
        for entry in backups.iterdir():
            if not entry.name.startswith("."):
                assert assert_absent_or_complete(entry, CASES), entry
    print(f"\n{KILLS} kills over {took_s:.3f} s of copying: {outcomes}")
    assert outcomes["absent"] >= 3, "few kills landed before the backup was done; kill earlier"

    final, _ = run_backup(source, backups / "final")
    assert final.returncode == 0, final.stderr
    assert assert_absent_or_complete(backups / "final", CASES)
    leftovers = [e.name for e in backups.iterdir() if e.name.startswith(".")]
    assert leftovers == [], f"a killed backup's leftovers outlived the next backup: {leftovers}"

"""A writer process for the crash and concurrency tests, run as ``python crash_writer.py DB``.

It imports everything once and then forks a writer child per request (a "zygote"): a fresh
Python would spend ~1.5 s importing before each of the 50 kills, a fork starts writing at once.
Children open the database themselves (nothing is shared across the fork) and loop: import a
series as a case, store a model run with 1-5 findings and a mask, then print
``committed CASE RUN INDEX`` - only after the commit returned.

Commands on stdin, answers on stdout (one line each, written with a single ``os.write`` so lines
from several processes never interleave):

- ``fork START COUNT`` -> ``pid PID``; the child writes cases START, START+1, ... (COUNT of them,
  0 = until killed), then exits 0 (or prints ``error MESSAGE`` and exits 1).
- ``pause START POINT KIND`` -> ``pid PID``; the child commits case START, then starts one more
  save (KIND ``run``: case START+1's model run; ``edit``: an edited mask of case START) and, at
  POINT of it, prints ``paused PID POINT`` and stops itself (SIGSTOP), for the test to kill it
  there or let it go on (SIGCONT). The points (see :func:`pause_at`): ``before_write`` (the save
  has begun, no mask byte written), ``inside_write`` (SimpleITK has written its temporary file,
  not yet renamed), ``before_commit`` (the mask file is in place and the rows are sent, the
  commit is not) and ``after_commit`` (committed; the save has not yet returned).
- ``wait PID`` -> ``exited PID CODE`` (CODE is -9 for SIGKILL).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))  # shared_fakes
sys.path.insert(0, str(Path(__file__).parent))  # db_fakes

import alembic.command  # noqa: F401  (imported here so a child never pays for it)
import db_fakes
import SimpleITK as sitk
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from meddiag_desktop.db import masks
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.migrate import upgrade  # noqa: F401
from meddiag_desktop.db.records import MaskEdit, ReviewStatus, UserRole
from meddiag_desktop.db.reviews import review_finding
from meddiag_desktop.db.runs import load_mask, store_inference
from meddiag_desktop.db.users import ensure_user

POINTS = ("before_write", "inside_write", "before_commit", "after_commit")
EDITOR = "dr_crash"


def findings_for(index: int) -> int:
    return 1 + index % 5


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def write_cases(database_path: str, start: int, count: int) -> None:
    with Database.open(DatabaseSettings(url=database_path, actor=f"writer-{os.getpid()}")) as db:
        index = start
        while count == 0 or index < start + count:
            write_one(db, index)
            index += 1


def stop_here(point: str) -> None:
    say(f"paused {os.getpid()} {point}")
    os.kill(os.getpid(), signal.SIGSTOP)


def pause_at(point: str, masks_dir: Path) -> None:
    """Make this child stop itself at ``point`` of its next mask save.

    The real code runs unchanged; the hooks only pause it: around the mask writer
    (``before_write``) and SimpleITK's file write (``inside_write``), and on SQLAlchemy's
    commit events once a new mask file lies in the masks folder (the other transactions of a
    save, its reads, commit too).
    """
    files_before = len(list(masks_dir.glob(f"*{masks.MASK_SUFFIX}")))
    paused = False

    def once(condition: Callable[[], bool] = lambda: True) -> bool:
        nonlocal paused
        if paused or not condition():
            return False
        paused = True
        stop_here(point)
        return True

    def new_file() -> bool:
        return len(list(masks_dir.glob(f"*{masks.MASK_SUFFIX}"))) > files_before

    if point == "before_write":
        original = masks.write_label_map

        def write_label_map(*args: Any, **kwargs: Any) -> Path:
            once()
            return original(*args, **kwargs)

        masks.write_label_map = write_label_map  # type: ignore[assignment]
    elif point == "inside_write":
        write_image = sitk.WriteImage

        def write_then_pause(*args: Any, **kwargs: Any) -> None:
            write_image(*args, **kwargs)
            once()

        sitk.WriteImage = write_then_pause
    elif point == "before_commit":
        event.listen(Engine, "commit", lambda _connection: once(new_file))
    elif point == "after_commit":
        event.listen(Session, "after_commit", lambda _session: once(new_file))
    else:
        raise ValueError(f"unknown point {point}")


def pause_in_save(database_path: str, start: int, point: str, kind: str) -> None:
    """Commit case ``start``, then stop at ``point`` of one more save (see the docstring)."""
    with Database.open(DatabaseSettings(url=database_path, actor=f"writer-{os.getpid()}")) as db:
        case_id, run_id = write_one(db, start)
        if kind == "edit":
            ensure_user(db, EDITOR, UserRole.RADIOLOGIST)
            editor = db.acting_as(EDITOR)
            stored = get_case(editor, case_id).runs[0].findings[0]
            labels = load_mask(editor, run_id).array_zyx.astype("uint8")
            labels[2:4, 5:9, 4:8] = 1  # a block painted in, as the brush would
            edit = MaskEdit(db_fakes.volume(start), labels, {1: "nodule"}, run_id)
            edited = replace(stored.finding, volume_ml=0.5)
            pause_at(point, db.masks_dir)
            review_finding(editor, stored.finding_pk, ReviewStatus.EDITED, "grown", edited, edit)
            say(f"edited {case_id}")
        else:
            pause_at(point, db.masks_dir)
            write_one(db, start + 1)


def write_one(db: Database, index: int) -> tuple[int, int]:
    """Import series ``index`` as a case and store a model run on it; (case id, run id)."""
    case_id = import_series(db, db_fakes.series(index)).case_id
    volume = db_fakes.volume(index)
    result = db_fakes.result(volume, findings_for(index), seed=index)
    run_id = store_inference(db, case_id, volume, result)
    say(f"committed {case_id} {run_id} {index}")
    return case_id, run_id


def child(database_path: str, start: int, count: int, pause: tuple[str, str] | None) -> None:
    try:
        if pause is None:
            write_cases(database_path, start, count)
        else:
            pause_in_save(database_path, start, *pause)
    except BaseException as exc:  # report anything, then die without running parent cleanup
        say("error " + " | ".join(traceback.format_exception_only(exc)).strip().replace("\n", " "))
        os._exit(1)
    os._exit(0)


def main() -> None:
    database_path = sys.argv[1]
    say("ready")
    for line in sys.stdin:
        command, *arguments = line.split()
        if command in ("fork", "pause"):
            start = int(arguments[0])
            count = int(arguments[1]) if command == "fork" else 1
            pause = (arguments[1], arguments[2]) if command == "pause" else None
            pid = os.fork()
            if pid == 0:
                child(database_path, start, count, pause)
            say(f"pid {pid}")
        elif command == "wait":
            pid = int(arguments[0])
            _, status = os.waitpid(pid, 0)
            say(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


if __name__ == "__main__":
    main()

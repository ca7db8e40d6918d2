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
- ``wait PID`` -> ``exited PID CODE`` (CODE is -9 for SIGKILL).
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # shared_fakes
sys.path.insert(0, str(Path(__file__).parent))  # db_fakes

import alembic.command  # noqa: F401  (imported here so a child never pays for it)
import db_fakes

from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.migrate import upgrade  # noqa: F401
from meddiag_desktop.db.runs import store_inference


def findings_for(index: int) -> int:
    return 1 + index % 5


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def write_cases(database_path: str, start: int, count: int) -> None:
    with Database.open(DatabaseSettings(url=database_path, actor=f"writer-{os.getpid()}")) as db:
        index = start
        while count == 0 or index < start + count:
            case_id = import_series(db, db_fakes.series(index)).case_id
            volume = db_fakes.volume(index)
            result = db_fakes.result(volume, findings_for(index), seed=index)
            run_id = store_inference(db, case_id, volume, result)
            say(f"committed {case_id} {run_id} {index}")
            index += 1


def child(database_path: str, start: int, count: int) -> None:
    try:
        write_cases(database_path, start, count)
    except BaseException as exc:  # report anything, then die without running parent cleanup
        say("error " + " | ".join(traceback.format_exception_only(exc)).strip().replace("\n", " "))
        os._exit(1)
    os._exit(0)


def main() -> None:
    database_path = sys.argv[1]
    say("ready")
    for line in sys.stdin:
        command, *arguments = line.split()
        if command == "fork":
            start, count = int(arguments[0]), int(arguments[1])
            pid = os.fork()
            if pid == 0:
                child(database_path, start, count)
            say(f"pid {pid}")
        elif command == "wait":
            pid = int(arguments[0])
            _, status = os.waitpid(pid, 0)
            say(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


if __name__ == "__main__":
    main()

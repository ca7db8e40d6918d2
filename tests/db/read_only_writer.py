"""Try to write to a database whose folder (or masks folder) is read-only; print what happened.

Run by test_db_failures.py as a separate process (as root, with the capabilities that let root
ignore file permissions dropped), printing one JSON line: the steps that worked and the error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # shared_fakes
sys.path.insert(0, str(Path(__file__).parent))  # db_fakes

import db_fakes

from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.errors import CaseDatabaseError
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.runs import store_inference


def main() -> None:
    database, masks = sys.argv[1], Path(sys.argv[2])
    done: list[str] = []
    try:
        with Database.open(DatabaseSettings(url=database, masks_dir=masks)) as db:
            done.append("open")
            case_id = import_series(db, db_fakes.series(50)).case_id
            done.append("import")
            volume = db_fakes.volume(50)
            store_inference(db, case_id, volume, db_fakes.result(volume))
            done.append("run")
    except CaseDatabaseError as exc:
        print(json.dumps({"done": done, "error": type(exc).__name__, "message": str(exc)}))
        return
    print(json.dumps({"done": done, "error": None, "message": ""}))


if __name__ == "__main__":
    main()

"""Case databases for the GUI tests: a migrated SQLite file per test, cases with findings.

Migrating a new database costs ~0.3 s, so one is migrated per test process and copied. Runs are
stored from the shared stand-in result (``tests/shared_fakes.py``), which keeps the panel and
review tests free of ONNX; the inference controller tests run real models.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import shared_fakes

from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.records import UserRole
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.domain import ScanMetadata, Segmentation, SeriesInfo, Volume

ACTOR = "reader"
SHAPE_ZYX = (6, 12, 10)
_template: Path | None = None


def _template_file() -> Path:
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="meddiag-gui-db-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.sqlite3"
        Database.open(DatabaseSettings(url=str(path), actor=ACTOR)).close()
        _template = path
    return _template


def open_database(tmp_path: Path, radiologist: bool = True) -> Database:
    """A fresh case database in ``tmp_path``; ``ACTOR`` is registered (as a radiologist)."""
    path = tmp_path / "cases.sqlite3"
    shutil.copyfile(_template_file(), path)
    db = Database.open(DatabaseSettings(url=str(path), actor=ACTOR))
    ensure_user(db, ACTOR, UserRole.RADIOLOGIST if radiologist else UserRole.RESIDENT)
    return db


metadata = shared_fakes.metadata
finding = shared_fakes.finding
FakeCard = shared_fakes.FakeCard


def series_for(meta: ScanMetadata, size_xyz: tuple[int, int, int] = (10, 12, 6)) -> SeriesInfo:
    return shared_fakes.series_info(meta, size_xyz=size_xyz)


def import_case(db: Database, index: int, **changes: str) -> int:
    return import_series(db, series_for(metadata(index, **changes))).case_id


def analysed_case(db: Database, index: int, findings: int = 3) -> int:
    """An imported case with one stored model run holding ``findings`` pending findings."""
    meta = metadata(index)
    case_id = import_series(db, series_for(meta)).case_id
    volume = Volume(
        np.full(SHAPE_ZYX, -1000, dtype=np.int16), (0.8, 0.8, 2.0), (0.0, 0.0, 0.0), metadata=meta
    )
    labels = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    labels[2:4, 3:6, 3:6] = 1
    result = shared_fakes.FakeResult(
        Segmentation(labels, {1: "nodule"}, {1: "#ff5050"}),
        tuple(finding(n) for n in range(1, findings + 1)),
    )
    store_inference(db, case_id, volume, result)
    return case_id

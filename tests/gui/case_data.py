"""Case databases for the GUI tests: a migrated SQLite file per test, cases with findings.

Migrating a new database costs ~0.3 s, so one is migrated per test process and copied. Runs are
stored from a stand-in result (the database takes an inference result by shape), which keeps
the panel and review tests free of ONNX; the inference controller tests run real models.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.records import UserRole
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.domain import (
    Finding,
    FindingSource,
    ScanMetadata,
    Segmentation,
    SeriesInfo,
    SeriesKind,
    Volume,
)

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


def metadata(index: int, **changes: str) -> ScanMetadata:
    values = {
        "modality": "CT",
        "patient_name": f"DOE^JANE{index:03d}",
        "patient_id": f"PID{index:05d}",
        "study_uid": f"1.2.3.{index}",
        "series_uid": f"1.2.3.{index}.1",
        "study_date": f"2024{1 + index % 12:02d}{1 + index % 28:02d}",
        "study_description": "CT CHEST",
        "series_description": f"AXIAL {index}",
    }
    values.update(changes)
    return ScanMetadata(**values)


def series_for(meta: ScanMetadata, size_xyz: tuple[int, int, int] = (10, 12, 6)) -> SeriesInfo:
    return SeriesInfo(
        key=meta.series_uid,
        kind=SeriesKind.VOLUME,
        metadata=meta,
        files=(),
        size_xyz=size_xyz,
        spacing_xyz_mm=(0.8, 0.8, 2.0),
        loadable=True,
    )


def import_case(db: Database, index: int, **changes: str) -> int:
    return import_series(db, series_for(metadata(index, **changes))).case_id


def finding(number: int, source: FindingSource = FindingSource.AI) -> Finding:
    return Finding(
        finding_id=number,
        label=1,
        label_name="nodule",
        volume_ml=0.25 * number,
        long_axis_mm=6.0 + number,
        short_axis_mm=4.0 + number / 2,
        centroid_lps_mm=(1.0 * number, 2.0, 103.0),
        centroid_index_xyz=(float(number), 2.0, 1.5),
        bbox_index_xyz=(number, 1, 1, number + 1, 3, 2),
        voxel_count=10 * number,
        mean_intensity=-35.0 + number,
        max_intensity=80.0,
        mean_probability=0.7,
        max_probability=0.9 + number / 100,
        source=source,
    )


@dataclass(frozen=True)
class FakeCard:
    name: str = "fake-model"
    version: str = "1.0"
    sha256: str = "ab" * 32
    output: dict = field(  # stored with the run; the findings panel takes colours from it
        default_factory=lambda: {"labels": [{"value": 1, "name": "nodule", "colour": "#ff5050"}]}
    )


@dataclass(frozen=True)
class _Provider:
    used: str = "CPUExecutionProvider"
    short_name: str = "cpu"
    attempts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Result:
    segmentation: Segmentation
    findings: tuple[Finding, ...]
    card: FakeCard = field(default_factory=FakeCard)
    provider: _Provider = field(default_factory=_Provider)
    timings_s: dict[str, float] = field(default_factory=lambda: {"total": 0.5})
    warnings: tuple[str, ...] = ()


def analysed_case(db: Database, index: int, findings: int = 3) -> int:
    """An imported case with one stored model run holding ``findings`` pending findings."""
    meta = metadata(index)
    case_id = import_series(db, series_for(meta)).case_id
    volume = Volume(
        np.full(SHAPE_ZYX, -1000, dtype=np.int16), (0.8, 0.8, 2.0), (0.0, 0.0, 0.0), metadata=meta
    )
    labels = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    labels[2:4, 3:6, 3:6] = 1
    result = _Result(
        Segmentation(labels, {1: "nodule"}, {1: "#ff5050"}),
        tuple(finding(n) for n in range(1, findings + 1)),
    )
    store_inference(db, case_id, volume, result)
    return case_id

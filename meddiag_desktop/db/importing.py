"""Series -> case: import (idempotent), and ``meddiag import PATH`` for whole folders.

A series is known by its identity: ``dicom:<series key>`` for DICOM (the SeriesInstanceUID, with
``#n`` where discovery split one UID) and ``file:<fingerprint>`` for NIfTI/MHA/NRRD files (they
have no UID). Importing the same series again returns the same case; when its files moved or
changed, the series row is updated and an audit event says so.

The fingerprint hashes every file's name, size and content: DICOM has no checksum, and a
changed file can load with altered pixels (PITFALLS.md), so it is hashed at import.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.masks import file_sha256
from meddiag_desktop.db.records import AuditAction, CaseStatus, ImportResult
from meddiag_desktop.db.schema import CaseRow, PatientRow, SeriesRow, StudyRow, now_utc
from meddiag_desktop.db.text_search import fold
from meddiag_desktop.domain import Progress, SeriesInfo, SeriesKind

ProgressCallback = Callable[[Progress], None]
_ATTEMPTS = 3  # a unique-key race with another writer (PostgreSQL) is retried


@dataclass(frozen=True)
class Fingerprint:
    location: str  # the folder holding the files (absolute)
    files: tuple[str, ...]  # relative to location, in slice order
    sha256: str
    total_bytes: int


@dataclass(frozen=True)
class ImportedSeries:
    """One line of ``meddiag import``: a case, or why a series was skipped."""

    key: str
    description: str
    result: ImportResult | None
    skipped_reason: str = ""


def fingerprint_files(files: tuple[Path, ...]) -> Fingerprint:
    """Names, sizes and sha256 of the files, in order; raises NotImportableError if one is gone."""
    paths = [Path(f).resolve() for f in files]
    if not paths:
        return Fingerprint("", (), hashlib.sha256().hexdigest(), 0)
    location = Path(os.path.commonpath([p.parent for p in paths]))
    digest = hashlib.sha256()
    total = 0
    relative: list[str] = []
    for path in paths:
        name = path.relative_to(location).as_posix()
        try:
            size = path.stat().st_size
            content = file_sha256(path)
        except OSError as exc:
            raise errors.NotImportableError(
                f"{path} cannot be read ({exc.strerror or exc}); nothing was imported"
            ) from exc
        digest.update(f"{name}\0{size}\0{content}\n".encode())
        total += size
        relative.append(name)
    return Fingerprint(str(location), tuple(relative), digest.hexdigest(), total)


def series_identity(series: SeriesInfo, fingerprint: Fingerprint) -> str:
    if series.kind is SeriesKind.FILE or not series.key:
        return f"file:{fingerprint.sha256}"
    return f"dicom:{series.key}"


def dicom_date(text: str) -> date | None:
    """A DICOM DA value (YYYYMMDD) as a date; None when absent or malformed."""
    try:
        return datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def import_series(db: Database, series: SeriesInfo) -> ImportResult:
    """The case for ``series``, created with its patient, study and series rows if new."""
    if not series.loadable:
        raise errors.NotImportableError(
            f"series {series.key or '?'} cannot be imported: {series.reason or 'not loadable'}"
        )
    fingerprint = fingerprint_files(series.files)
    identity = series_identity(series, fingerprint)
    for attempt in range(_ATTEMPTS):
        try:
            with db.writing() as session:
                return _import(session, db.actor, series, fingerprint, identity)
        except errors.ConflictError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def import_path(
    db: Database, path: Path | str, progress: ProgressCallback | None = None
) -> list[ImportedSeries]:
    """Discover every series under ``path`` and import each loadable one as a case."""
    from meddiag_desktop.scans import discover
    from meddiag_desktop.scans.file_formats import verified_for_import

    # A listing trusts a .nii.gz's size trailer; a case is made only from data that passes its CRC.
    found = [verified_for_import(s) for s in discover(path, progress=progress)]
    outcomes: list[ImportedSeries] = []
    loadable = [s for s in found if s.loadable]
    for series in found:
        if not series.loadable:
            outcomes.append(ImportedSeries(series.key, series.description, None, series.reason))
            continue
        if progress is not None:
            done = sum(1 for o in outcomes if o.result is not None)
            progress(Progress(done / max(len(loadable), 1), "importing", series.description or ""))
        outcomes.append(ImportedSeries(series.key, series.description, import_series(db, series)))
    if progress is not None:
        progress(Progress(1.0, "imported", f"{len(loadable)} series"))
    return outcomes


def _import(
    session: Session, actor: str, series: SeriesInfo, fingerprint: Fingerprint, identity: str
) -> ImportResult:
    existing = session.scalars(select(SeriesRow).where(SeriesRow.identity == identity)).first()
    if existing is not None:
        return _reimport(session, actor, existing, fingerprint)
    meta = series.metadata
    patient = _patient(
        session, meta.patient_id, meta.patient_name, meta.patient_birth_date, meta.patient_sex
    )
    study = session.scalars(
        select(StudyRow).where(
            StudyRow.patient_fk == patient.id, StudyRow.study_uid == meta.study_uid
        )
    ).first()
    if study is None:
        study = StudyRow(
            patient_fk=patient.id,
            study_uid=meta.study_uid,
            study_date=dicom_date(meta.study_date),
            description=meta.study_description,
            institution=meta.institution,
        )
        session.add(study)
        session.flush()
    row = SeriesRow(
        study_fk=study.id,
        identity=identity,
        series_key=series.key,
        series_uid=meta.series_uid,
        kind=series.kind.value,
        modality=meta.modality,
        description=meta.series_description,
        series_number=meta.series_number,
        series_date=meta.series_date,
        manufacturer=meta.manufacturer,
        manufacturer_model=meta.manufacturer_model,
        body_part=meta.body_part_examined[:64],
        size_x=series.size_xyz[0],
        size_y=series.size_xyz[1],
        size_z=series.size_xyz[2],
        spacing_x_mm=series.spacing_xyz_mm[0],
        spacing_y_mm=series.spacing_xyz_mm[1],
        spacing_z_mm=series.spacing_xyz_mm[2],
        location=fingerprint.location,
        files=list(fingerprint.files),
        file_count=len(fingerprint.files),
        files_bytes=fingerprint.total_bytes,
        fingerprint=fingerprint.sha256,
    )
    session.add(row)
    session.flush()
    case = CaseRow(
        series_fk=row.id,
        patient_fk=patient.id,
        status=CaseStatus.NEW,
        study_date=study.study_date,
        modality=meta.modality.upper(),
        patient_name_key=patient.name_folded,  # the patient row never changes: set once
        patient_id_key=patient.patient_id_folded,
        search_text=fold(
            patient.name,
            patient.dicom_patient_id,
            study.description,
            row.description,
            study.institution,
            row.modality,
        ),
    )
    session.add(case)
    session.flush()
    add_event(
        session,
        actor,
        AuditAction.CASE_IMPORTED,
        "case",
        case.id,
        case.id,
        {
            "series_uid": meta.series_uid,
            "modality": meta.modality,
            "location": fingerprint.location,
            "files": len(fingerprint.files),
            "fingerprint": fingerprint.sha256,
        },
    )
    return ImportResult(case_id=case.id, created=True, files_changed=False)


def _patient(session: Session, patient_id: str, name: str, birth_date: str, sex: str) -> PatientRow:
    patient = session.scalars(
        select(PatientRow).where(
            PatientRow.dicom_patient_id == patient_id,
            PatientRow.name == name,
            PatientRow.birth_date == birth_date,
        )
    ).first()
    if patient is None:
        patient = PatientRow(
            dicom_patient_id=patient_id,
            name=name,
            name_folded=fold(name)[:255],
            patient_id_folded=fold(patient_id)[:255],
            birth_date=birth_date,
            sex=sex,
        )
        session.add(patient)
        session.flush()
    return patient


def _reimport(
    session: Session, actor: str, row: SeriesRow, fingerprint: Fingerprint
) -> ImportResult:
    case_id = session.scalars(select(CaseRow.id).where(CaseRow.series_fk == row.id)).one()
    changed = row.fingerprint != fingerprint.sha256
    moved = row.location != fingerprint.location
    if changed or moved:
        add_event(
            session,
            actor,
            AuditAction.SERIES_FILES_CHANGED,
            "series",
            row.id,
            case_id,
            {
                "old_location": row.location,
                "new_location": fingerprint.location,
                "old_fingerprint": row.fingerprint,
                "new_fingerprint": fingerprint.sha256,
                "content_changed": changed,
            },
        )
        row.location = fingerprint.location
        row.files = list(fingerprint.files)
        row.file_count = len(fingerprint.files)
        row.files_bytes = fingerprint.total_bytes
        row.fingerprint = fingerprint.sha256
    else:
        add_event(
            session,
            actor,
            AuditAction.CASE_IMPORTED,
            "case",
            case_id,
            case_id,
            {"already_imported": True, "fingerprint": fingerprint.sha256},
        )
    row.files_seen_at = now_utc()
    return ImportResult(case_id=case_id, created=False, files_changed=changed)

"""``meddiag db check``: is the database sound, and does every mask row have its exact file?

Reports SQLite's ``integrity_check`` and ``foreign_key_check``, mask rows (the runs' masks and
the saved edits in ``reviewed_masks``) whose file is missing or whose sha256 differs, mask files
nothing explains (orphans: no row refers to them and no journal entry of a save names them - a
deleted case whose files could not be removed, or a file put there by hand) and leftover
temporary files; with ``scans=True`` also the imported series whose files vanished or changed;
and the audit log's hash chain (:mod:`.audit_chain`): the first event edited or deleted.

What an interrupted save leaves is not damage: opening the database removes it (the journal in
:mod:`.pending_masks`), and a save still in progress elsewhere is journaled, so its file is not
an orphan either. After a crash, ``db check`` therefore passes without ``--remove-orphans``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Row, select, text
from sqlalchemy.orm import Session

from meddiag_desktop.db import records_from_rows
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.audit_chain import verify_chain
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import NotImportableError
from meddiag_desktop.db.importing import fingerprint_files
from meddiag_desktop.db.masks import files_in, fsync_folder, verify_file
from meddiag_desktop.db.pending_masks import journaled_mask_names
from meddiag_desktop.db.records import (
    AuditAction,
    Backend,
    CaseStatus,
    CheckReport,
    MaskProblem,
    MaskProblemKind,
    MaskRecord,
    SeriesProblem,
)
from meddiag_desktop.db.schema import CaseRow, MaskRow, ModelRunRow, ReviewedMaskRow, SeriesRow

ORPHAN_MIN_AGE_S = 600.0  # younger files may belong to a save still in progress elsewhere


def check_database(db: Database, scans: bool = False) -> CheckReport:
    integrity: tuple[str, ...] = ("ok",)
    foreign_keys: tuple[str, ...] = ()
    with db.reading() as session:
        if db.backend is Backend.SQLITE:
            integrity = tuple(
                str(r[0]) for r in session.execute(text("PRAGMA integrity_check")).all()
            )
            foreign_keys = tuple(
                f"{r[0]} row {r[1]} -> {r[2]}"
                for r in session.execute(text("PRAGMA foreign_key_check")).all()
            )
        stored = _stored_masks(session)
        series = (
            session.execute(
                select(CaseRow.id, SeriesRow.location, SeriesRow.files, SeriesRow.fingerprint)
                .join(SeriesRow, CaseRow.series_fk == SeriesRow.id)
                .where(CaseRow.status != CaseStatus.SIGNED)
            ).all()
            if scans
            else []
        )
        chain = verify_chain(session.connection())
    # Files are listed after the rows were read (a mask committed meanwhile is never "missing"),
    # the journal after the files (a save journals its file before writing it and removes the
    # entry only after its commit), and the rows of what is left read again: a save that ended
    # between the first read and the journal's listing is seen committed, or its file gone.
    on_disk, temporaries = files_in(db.masks_dir)
    unexplained = set(on_disk) - {s.relative_path for s in stored}
    unexplained -= journaled_mask_names(db.masks_dir)
    if unexplained:
        with db.reading() as session:
            unexplained -= set(stored_mask_paths(session))
        unexplained = {n for n in unexplained if (db.masks_dir / n).is_file()}
    problems: list[MaskProblem] = []
    for where in stored:
        problem = verify_file(db.masks_dir, where.record, db.mask_cipher)
        if problem is not None:
            kind = (
                MaskProblemKind.MISSING if problem == "missing" else MaskProblemKind.SHA256_MISMATCH
            )
            problems.append(
                MaskProblem(
                    kind, where.relative_path, where.run_id, where.case_id, where.reviewed_mask_id
                )
            )
    problems += [MaskProblem(MaskProblemKind.ORPHAN, name) for name in sorted(unexplained)]
    problems += [MaskProblem(MaskProblemKind.LEFTOVER_TEMPORARY, name) for name in temporaries]
    return CheckReport(
        integrity=integrity,
        foreign_key_problems=foreign_keys,
        mask_problems=tuple(problems),
        series_problems=tuple(_series_problems(series)),
        masks_checked=len(stored),
        audit_chain=chain,
    )


def remove_orphans(
    db: Database, report: CheckReport, min_age_s: float = ORPHAN_MIN_AGE_S
) -> tuple[str, ...]:
    """Delete orphan and temporary mask files older than ``min_age_s``; the names removed."""
    kinds = (MaskProblemKind.ORPHAN, MaskProblemKind.LEFTOVER_TEMPORARY)
    candidates = [p.relative_path for p in report.mask_problems if p.kind in kinds]
    if not candidates:
        return ()
    with db.reading() as session:
        referenced = set(stored_mask_paths(session))
    removed: list[str] = []
    now = time.time()
    for name in candidates:
        path = db.masks_dir / name
        try:
            if name in referenced or now - path.stat().st_mtime < min_age_s:
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(name)
    if removed:
        fsync_folder(db.masks_dir)
        with db.writing() as session:
            add_event(session, db.actor, AuditAction.MASK_FILES_REMOVED, details={"files": removed})
    return tuple(removed)


@dataclass(frozen=True)
class _StoredMask:
    record: MaskRecord
    run_id: int | None
    case_id: int
    reviewed_mask_id: int | None = None

    @property
    def relative_path(self) -> str:
        return self.record.relative_path


def _stored_masks(session: Session) -> list[_StoredMask]:
    runs = session.execute(
        select(MaskRow, ModelRunRow.case_fk).join(ModelRunRow, MaskRow.run_fk == ModelRunRow.id)
    ).all()
    edits = session.scalars(select(ReviewedMaskRow)).all()
    return [
        *(_StoredMask(records_from_rows.mask_record(m), m.run_fk, case_id) for m, case_id in runs),
        *(_StoredMask(records_from_rows.mask_record(e), e.run_fk, e.case_fk, e.id) for e in edits),
    ]


def stored_mask_paths(session: Session) -> list[str]:
    """Every mask file a row refers to: the runs' masks and the saved edits."""
    return [
        *session.scalars(select(MaskRow.relative_path)).all(),
        *session.scalars(select(ReviewedMaskRow.relative_path)).all(),
    ]


def _series_problems(rows: Sequence[Row]) -> list[SeriesProblem]:
    problems = []
    for case_id, location, files, fingerprint in rows:
        paths = tuple(Path(location) / f for f in files or ())
        if not all(p.is_file() for p in paths):
            problems.append(SeriesProblem(case_id, location, "missing"))
            continue
        try:
            if fingerprint_files(paths).sha256 != fingerprint:
                problems.append(SeriesProblem(case_id, location, "changed"))
        except NotImportableError:
            problems.append(SeriesProblem(case_id, location, "missing"))
    return problems

"""Reviewed masks: every saved edit of a case's label map is a new mask file and row.

The brush and eraser change the label map the viewer shows. Saving the edit (a review with new
measurements, or a manual finding) stores that whole map as a new version in the same
transaction as the decision, the way model-run masks are stored (:mod:`meddiag_desktop.db.masks`):
the file is journaled as pending, written, fsynced and hashed first, the row committed after,
the file removed again if the transaction fails, and a kill anywhere healed at the next open.
Versions are never changed, so every saved edit stays on file;
``CaseDetail.current_reviewed_mask`` says when the newest one is the map the viewer shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors, records_from_rows
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.masks import WrittenMask, mask_written, read_verified
from meddiag_desktop.db.records import AuditAction, MaskEdit, ReviewedMask, StoredFinding
from meddiag_desktop.db.schema import ModelRunRow, ReviewedMaskRow, UserRow
from meddiag_desktop.domain import Volume


@dataclass(frozen=True)
class WrittenEdit:
    """An edited label map whose file is on disk, waiting for its row."""

    edit: MaskEdit
    file: WrittenMask


@contextmanager
def edit_written(db: Database, edit: MaskEdit | None) -> Iterator[WrittenEdit | None]:
    """Write ``edit``'s file before the caller's transaction (None without an edit); remove it
    again when the block fails, so a refused or failed save leaves neither row nor file, and
    journal it as pending until the block ends (:func:`~meddiag_desktop.db.masks.mask_written`),
    so a kill before the commit leaves nothing the next open cannot tell apart and remove."""
    if edit is None:
        yield None
        return
    if edit.labels_zyx.shape != edit.scan.shape_zyx:
        raise errors.CaseStateError(
            f"the edited label map {edit.labels_zyx.shape} does not fit the scan "
            f"{edit.scan.shape_zyx}"
        )
    with mask_written(
        db.masks_dir,
        edit.scan,
        edit.labels_zyx,
        "the edit",
        database=db.display_url,
        cipher=db.mask_cipher,
    ) as written:
        yield WrittenEdit(edit, written)


def add_reviewed_mask(
    session: Session,
    actor: str,
    case_id: int,
    author_id: int,
    written: WrittenEdit,
    cause: dict[str, Any],
) -> ReviewedMaskRow:
    """Add the version's row and its audit event to the caller's transaction.

    ``cause`` (the decision or manual finding it was saved with) goes into the audit event.
    """
    run_id = written.edit.run_id
    if run_id is not None:
        run_case = session.scalar(select(ModelRunRow.case_fk).where(ModelRunRow.id == run_id))
        if run_case != case_id:
            raise errors.CaseStateError(f"model run {run_id} is not a run of case {case_id}")
    file = written.file
    row = ReviewedMaskRow(
        case_fk=case_id,
        run_fk=run_id,
        relative_path=file.relative_path,
        sha256=file.sha256,
        size_bytes=file.size_bytes,
        geometry=records_from_rows.geometry_to_json(file.geometry),
        label_names={str(k): v for k, v in written.edit.label_names.items()},
        author_fk=author_id,
    )
    session.add(row)
    session.flush()
    add_event(
        session,
        actor,
        AuditAction.MASK_EDIT_SAVED,
        "reviewed_mask",
        row.id,
        case_id,
        {
            "run_id": run_id,
            "mask": file.relative_path,
            "mask_sha256": file.sha256,
            "labelled_voxels": int(np.count_nonzero(written.edit.labels_zyx)),
            **cause,
        },
    )
    return row


def reviewed_masks_of(session: Session, case_id: int) -> tuple[ReviewedMask, ...]:
    """Every saved edit of the case, oldest first."""
    rows = session.execute(
        select(ReviewedMaskRow, UserRow.username)
        .join(UserRow, ReviewedMaskRow.author_fk == UserRow.id)
        .where(ReviewedMaskRow.case_fk == case_id)
        .order_by(ReviewedMaskRow.id)
    ).all()
    return tuple(records_from_rows.reviewed_mask(row, author) for row, author in rows)


def list_reviewed_masks(db: Database, case_id: int) -> tuple[ReviewedMask, ...]:
    with db.reading() as session:
        return reviewed_masks_of(session, case_id)


def load_reviewed_mask(db: Database, reviewed_mask_id: int) -> Volume:
    """The saved edit's label map, verified (sha256 and geometry) against what was stored."""
    with db.reading() as session:
        row = session.get(ReviewedMaskRow, reviewed_mask_id)
        if row is None:
            raise errors.NotFoundError(f"there is no reviewed mask {reviewed_mask_id}")
        record = records_from_rows.mask_record(row)
    return read_verified(db.masks_dir, record, db.mask_cipher)


def with_manual_lesions(
    labels_zyx: np.ndarray, earlier_zyx: np.ndarray, manual: Sequence[StoredFinding]
) -> np.ndarray:
    """``labels_zyx`` (changed in place) with each manual lesion of an earlier saved edit drawn
    in where it is empty.

    A model run stored after an edit is shown on its own mask, but the radiologist's manual
    findings stay findings of the case: their voxels, kept in the saved edit within each
    finding's box, go onto the new map so the overlay still shows what the list names.
    """
    if earlier_zyx.shape != labels_zyx.shape:
        return labels_zyx  # another grid: nothing can be carried over
    for stored in manual:
        x0, y0, z0, x1, y1, z1 = stored.finding.bbox_index_xyz
        box = np.s_[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1]
        region = labels_zyx[box]
        label = stored.finding.label
        region[(earlier_zyx[box] == label) & (region == 0)] = label
    return labels_zyx

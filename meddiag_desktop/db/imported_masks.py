"""A label map brought in from elsewhere (a DICOM SEG another tool wrote), stored as a new
reviewed mask version of the case, its source named in the audit trail.

It is stored the way a saved brush edit is (:mod:`meddiag_desktop.db.reviewed_masks`: file
journaled, written and hashed first, row and audit event in one transaction), so it is the map
the case shows next time and stays on file beside every other version. It is attached to the
case's current run, if any, because it is the map the reader now reviews that run's findings
on (``CaseDetail.current_reviewed_mask`` shows an edit of the current run). A signed case is
final: nothing is added to it.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from meddiag_desktop.db import errors
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import CaseStatus, MaskEdit, RunOutcome
from meddiag_desktop.db.reviewed_masks import add_reviewed_mask, edit_written
from meddiag_desktop.db.schema import CaseRow, ModelRunRow, now_utc
from meddiag_desktop.db.users import acting_user
from meddiag_desktop.domain import Volume


def add_imported_mask(
    db: Database,
    case_id: int,
    scan: Volume,
    labels_zyx: np.ndarray,
    label_names: dict[int, str],
    source: dict[str, str],
) -> int:
    """Store ``labels_zyx`` (uint8, on ``scan``'s grid) as the case's newest mask version;
    ``source`` (e.g. ``{"source": "from DICOM SEG liver.dcm (...)", "seg_sop_instance_uid":
    ...}``) goes into its audit event. Returns the version's id."""
    with db.reading() as session:
        run_id = session.scalars(
            select(ModelRunRow.id)
            .where(ModelRunRow.case_fk == case_id, ModelRunRow.outcome == RunOutcome.SUCCEEDED)
            .order_by(ModelRunRow.id.desc())
        ).first()
    edit = MaskEdit(scan, labels_zyx, dict(label_names), run_id)
    with edit_written(db, edit) as written, db.writing() as session:
        assert written is not None
        author = acting_user(session, db.actor)
        case = session.get(CaseRow, case_id, with_for_update=True)
        if case is None:
            raise errors.NotFoundError(f"there is no case {case_id}")
        if case.status is CaseStatus.SIGNED:
            raise errors.CaseStateError(f"case {case_id} is signed; its masks are final")
        case.updated_at = now_utc()
        row = add_reviewed_mask(session, db.actor, case_id, author.id, written, dict(source))
        return int(row.id)

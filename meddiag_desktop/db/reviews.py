"""The radiologist's decisions: accept, reject or edit each finding, add manual ones, sign off.

Every decision is a new review row (the finding's state before it included), so the history of
a finding can be replayed; the finding row only carries its current state. An edit or manual
finding may come with the whole edited label map (:class:`MaskEdit`): it is stored as a new
reviewed mask version in the same transaction (:mod:`meddiag_desktop.db.reviewed_masks`), so
the decision and the voxels it was made on are saved together or not at all. Signing requires a
radiologist and every AI finding of the case's current run reviewed; a signed case is locked.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors, records_from_rows
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.cases import review_record, summary
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import (
    AuditAction,
    CaseStatus,
    CaseSummary,
    MaskEdit,
    Review,
    ReviewStatus,
    RunOutcome,
    StoredFinding,
    UserRole,
)
from meddiag_desktop.db.reviewed_masks import add_reviewed_mask, edit_written
from meddiag_desktop.db.roles import Permission, check_user
from meddiag_desktop.db.schema import CaseRow, FindingRow, ModelRunRow, ReviewRow, now_utc
from meddiag_desktop.db.users import acting_user
from meddiag_desktop.domain import Finding, FindingSource

SIGNING_ROLES = frozenset({UserRole.RADIOLOGIST})


def review_finding(
    db: Database,
    finding_pk: int,
    decision: ReviewStatus,
    reason: str = "",
    edited: Finding | None = None,
    mask: MaskEdit | None = None,
) -> Review:
    """Record the acting user's decision on one finding; ``edited`` holds the new measurements
    and ``mask`` the label map they were measured on (stored as a new reviewed mask version)."""
    if decision is ReviewStatus.PENDING:
        raise errors.CaseStateError("a review decides: accepted, rejected or edited")
    if (decision is ReviewStatus.EDITED) != (edited is not None):
        raise errors.CaseStateError("an edit needs the edited finding, and only an edit has one")
    if mask is not None and edited is None:
        raise errors.CaseStateError("only an edit saves an edited label map")
    with edit_written(db, mask) as written, db.writing() as session:
        reviewer = acting_user(session, db.actor)
        check_user(reviewer, Permission.REVIEW)
        finding = session.get(FindingRow, finding_pk, with_for_update=True)
        if finding is None:
            raise errors.NotFoundError(f"there is no finding {finding_pk}")
        case = _unsigned_case(session, finding.case_fk)
        before = records_from_rows.stored_finding(finding)
        previous_status = ReviewStatus(finding.review_status)
        new_values = None
        if edited is not None:
            original = before.finding
            new = replace(edited, finding_id=original.finding_id, source=original.source)
            new_values = _finding_json(new)
            for name, value in records_from_rows.finding_values(new).items():
                setattr(finding, name, value)
        finding.review_status = decision
        row = ReviewRow(
            finding_fk=finding.id,
            case_fk=case.id,
            reviewer_fk=reviewer.id,
            decision=decision,
            previous_status=previous_status,
            reason=reason,
            previous_values=_finding_json(before.finding) if edited is not None else None,
            new_values=new_values,
            decided_at=now_utc(),
        )
        session.add(row)
        if case.status is CaseStatus.ANALYSED:
            case.status = CaseStatus.IN_REVIEW
        case.updated_at = now_utc()
        session.flush()
        add_event(
            session,
            db.actor,
            AuditAction.FINDING_REVIEWED,
            "finding",
            finding.id,
            case.id,
            {
                "decision": decision.value,
                "previous_status": previous_status.value,
                "reason": reason,
                "finding_number": before.finding.finding_id,
                "run_id": finding.run_fk,
            },
        )
        if written is not None:
            cause = {"finding_id": finding.id, "review_id": row.id}
            add_reviewed_mask(session, db.actor, case.id, reviewer.id, written, cause)
        return review_record(row, reviewer.username)


def add_manual_finding(
    db: Database, case_id: int, finding: Finding, mask: MaskEdit | None = None
) -> StoredFinding:
    """A lesion the radiologist marked: stored as MANUAL and accepted (it is their own);
    ``mask`` (the label map it was painted in) is stored as a new reviewed mask version."""
    with edit_written(db, mask) as written, db.writing() as session:
        author = acting_user(session, db.actor)
        check_user(author, Permission.REVIEW)
        case = _unsigned_case(session, case_id)
        row = FindingRow(
            case_fk=case.id,
            run_fk=None,
            source=FindingSource.MANUAL,
            review_status=ReviewStatus.ACCEPTED,
            **records_from_rows.finding_values(finding),
        )
        session.add(row)
        case.updated_at = now_utc()
        case.finding_count += 1  # manual findings always count (the worklist sorts by it)
        session.flush()
        add_event(
            session,
            db.actor,
            AuditAction.FINDING_ADDED,
            "finding",
            row.id,
            case.id,
            {"label": finding.label_name, "volume_ml": finding.volume_ml},
        )
        if written is not None:
            cause = {"finding_id": row.id}
            add_reviewed_mask(session, db.actor, case.id, author.id, written, cause)
        return records_from_rows.stored_finding(row)


def sign_case(db: Database, case_id: int) -> CaseSummary:
    """Sign the case off; refuses while any AI finding of the current run is unreviewed."""
    with db.writing() as session:
        signer = acting_user(session, db.actor)
        if UserRole(signer.role) not in SIGNING_ROLES:
            raise errors.PermissionDeniedError(
                f"'{signer.username}' is a {UserRole(signer.role).value}; only a radiologist "
                "can sign a case"
            )
        case = _unsigned_case(session, case_id)
        if case.status in (CaseStatus.NEW, CaseStatus.FAILED):
            raise errors.CaseStateError(
                f"case {case_id} has no successful model run to sign ({case.status.value})"
            )
        run_id = session.scalars(
            select(ModelRunRow.id)
            .where(ModelRunRow.case_fk == case_id, ModelRunRow.outcome == RunOutcome.SUCCEEDED)
            .order_by(ModelRunRow.id.desc())
        ).first()
        pending = session.scalars(
            select(FindingRow.number)
            .where(
                FindingRow.run_fk == run_id,
                FindingRow.source == FindingSource.AI,
                FindingRow.review_status == ReviewStatus.PENDING,
            )
            .order_by(FindingRow.number)
        ).all()
        if pending:
            numbers = ", ".join(f"#{n}" for n in pending[:10])
            raise errors.CaseStateError(
                f"case {case_id} has {len(pending)} AI finding(s) not reviewed yet ({numbers}): "
                "accept, reject or edit each before signing"
            )
        before = CaseStatus(case.status)
        case.status = CaseStatus.SIGNED
        case.signed_at = case.updated_at = now_utc()
        case.signed_by_fk = signer.id
        session.flush()
        add_event(
            session,
            db.actor,
            AuditAction.CASE_SIGNED,
            "case",
            case_id,
            case_id,
            {"run_id": run_id, "from": before.value},
        )
        return summary(session, case_id)


def _unsigned_case(session: Session, case_id: int) -> CaseRow:
    case = session.get(CaseRow, case_id, with_for_update=True)
    if case is None:
        raise errors.NotFoundError(f"there is no case {case_id}")
    if case.status is CaseStatus.SIGNED:
        raise errors.CaseStateError(f"case {case_id} is signed; its findings are final")
    return case


def _finding_json(finding: Finding) -> dict:
    return {**records_from_rows.finding_values(finding), "source": finding.source.value}

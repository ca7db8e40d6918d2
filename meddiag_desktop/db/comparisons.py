"""Stored follow-up comparisons: save one, read them back, and the tracking UIDs they continue.

A comparison is saved whole in one transaction (its row, one row per lesion track, the reader's
overrides) with its audit event, and is never changed afterwards: the reader's corrections are
saved as a new comparison of the same pair that names the one it revises
(:class:`~meddiag_desktop.db.comparison_records.NewComparison` ``revises``). The newest
comparison of a case is the one its exports follow: :func:`continued_tracking_uids` gives, per
current finding of that comparison, the tracking UID of the lesion it continues, which the
DICOM SR of the case then writes instead of a new one.

Comparing needs the review permission (it is part of reading the case); the two cases must be
different cases of the same patient, and the current case must not be signed (a comparison
changes the tracking UIDs its exports write, and a signed case's exports are final).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.comparison_records import (
    ComparisonRecord,
    MatchBasis,
    MatchOverride,
    NewComparison,
    OverrideAction,
    Response,
    StoredTrack,
    TrackStatus,
)
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.records import AuditAction, CaseStatus
from meddiag_desktop.db.roles import Permission, check_in
from meddiag_desktop.db.schema import (
    CaseRow,
    ComparisonOverrideRow,
    ComparisonRow,
    ComparisonTrackRow,
    FindingRow,
    now_utc,
)


def store_comparison(db: Database, new: NewComparison) -> int:
    """Save ``new`` with its tracks and overrides; returns the comparison's id."""
    with db.writing() as session:
        check_in(session, db.actor, Permission.REVIEW)
        _check_pair(session, new.case_id, new.prior_case_id)
        _check_findings(session, new)
        row = ComparisonRow(
            case_fk=new.case_id,
            prior_case_fk=new.prior_case_id,
            revises_id=new.revises,
            created_at=now_utc(),
            created_by=db.actor[:64],
            transform=dict(new.transform),
            quality=dict(new.quality),
            seconds=float(new.seconds),
            response=Response(new.response),
            rule=new.rule,
            summary=dict(new.summary),
            chosen_targets=list(new.chosen_targets) if new.chosen_targets is not None else None,
        )
        session.add(row)
        session.flush()
        session.add_all(
            ComparisonTrackRow(
                comparison_fk=row.id,
                track_id=track.track_id[:16],
                tracking_uid=track.tracking_uid,
                status=TrackStatus(track.status),
                basis=MatchBasis(track.basis),
                prior_finding_fk=track.prior_finding_pk,
                current_finding_fk=track.current_finding_pk,
                target=bool(track.target),
                dice=track.dice,
                distance_mm=track.distance_mm,
            )
            for track in new.tracks
        )
        session.add_all(
            ComparisonOverrideRow(
                comparison_fk=row.id,
                position=position,
                action=OverrideAction(override.action),
                prior_finding_fk=override.prior_finding_pk,
                current_finding_fk=override.current_finding_pk,
            )
            for position, override in enumerate(new.overrides)
        )
        session.flush()
        revised = new.revises is not None
        add_event(
            session,
            db.actor,
            AuditAction.COMPARISON_REVISED if revised else AuditAction.COMPARISON_SAVED,
            "comparison",
            row.id,
            new.case_id,
            {
                "prior_case_id": new.prior_case_id,
                "revises": new.revises,
                "response": Response(new.response).value,
                "rule": new.rule,
                "transform": str(new.transform.get("type", "")),
                "metric": new.quality.get("metric"),
                "tracks": len(new.tracks),
                "overrides": [_override_json(o) for o in new.overrides],
                "chosen_targets": list(new.chosen_targets)
                if new.chosen_targets is not None
                else None,
            },
        )
        return int(row.id)


def get_comparison(db: Database, comparison_id: int) -> ComparisonRecord:
    with db.reading() as session:
        row = session.get(ComparisonRow, comparison_id)
        if row is None:
            raise errors.NotFoundError(f"there is no comparison {comparison_id}")
        return _record(session, row)


def latest_comparison(
    db: Database, case_id: int, prior_case_id: int | None = None
) -> ComparisonRecord | None:
    """The newest comparison of case ``case_id`` (with ``prior_case_id``, if given)."""
    with db.reading() as session:
        row = _latest(session, case_id, prior_case_id)
        return _record(session, row) if row is not None else None


def comparisons_of_case(db: Database, case_id: int) -> tuple[ComparisonRecord, ...]:
    """Every comparison the case is the current study of, oldest first (revisions included)."""
    with db.reading() as session:
        rows = session.scalars(
            select(ComparisonRow).where(ComparisonRow.case_fk == case_id).order_by(ComparisonRow.id)
        ).all()
        return tuple(_record(session, row) for row in rows)


def continued_tracking_uids(db: Database, case_id: int) -> dict[int, str]:
    """Finding id -> tracking UID for the findings of case ``case_id`` that continue a lesion
    of an earlier study, by the case's newest comparison; empty when it has none."""
    with db.reading() as session:
        return tracking_uids_in(session, case_id)


def tracking_uids_in(session: Session, case_id: int) -> dict[int, str]:
    """:func:`continued_tracking_uids` inside the caller's unit of work."""
    row = _latest(session, case_id, None)
    if row is None:
        return {}
    tracks = session.scalars(
        select(ComparisonTrackRow).where(
            ComparisonTrackRow.comparison_fk == row.id,
            ComparisonTrackRow.status == TrackStatus.MATCHED,
            ComparisonTrackRow.current_finding_fk.is_not(None),
        )
    ).all()
    return {int(t.current_finding_fk): t.tracking_uid for t in tracks if t.current_finding_fk}


def _latest(session: Session, case_id: int, prior_case_id: int | None) -> ComparisonRow | None:
    query = select(ComparisonRow).where(ComparisonRow.case_fk == case_id)
    if prior_case_id is not None:
        query = query.where(ComparisonRow.prior_case_fk == prior_case_id)
    return session.scalars(query.order_by(ComparisonRow.id.desc()).limit(1)).first()


def _check_pair(session: Session, case_id: int, prior_case_id: int) -> None:
    if case_id == prior_case_id:
        raise errors.CaseStateError(f"case {case_id} cannot be compared with itself")
    current = session.get(CaseRow, case_id)
    prior = session.get(CaseRow, prior_case_id)
    for wanted, row in ((case_id, current), (prior_case_id, prior)):
        if row is None:
            raise errors.NotFoundError(f"there is no case {wanted}")
    assert current is not None and prior is not None
    if current.status is CaseStatus.SIGNED:
        raise errors.CaseStateError(
            f"case {case_id} is signed: its exports are final, so no comparison is stored for "
            "it (compare before signing, or view one without storing it)"
        )
    if current.patient_fk != prior.patient_fk:
        raise errors.CaseStateError(
            f"cases {case_id} and {prior_case_id} are of different patients: a follow-up "
            "compares studies of one patient"
        )


def _check_findings(session: Session, new: NewComparison) -> None:
    """Every finding named belongs to the case of its side."""
    sides: dict[int, set[int]] = {new.prior_case_id: set(), new.case_id: set()}
    for track in new.tracks:
        if track.prior_finding_pk is not None:
            sides[new.prior_case_id].add(track.prior_finding_pk)
        if track.current_finding_pk is not None:
            sides[new.case_id].add(track.current_finding_pk)
    for override in new.overrides:
        if override.prior_finding_pk is not None:
            sides[new.prior_case_id].add(override.prior_finding_pk)
        if override.current_finding_pk is not None:
            sides[new.case_id].add(override.current_finding_pk)
    for case_id, wanted in sides.items():
        if not wanted:
            continue
        found = set(
            session.scalars(
                select(FindingRow.id).where(
                    FindingRow.id.in_(wanted), FindingRow.case_fk == case_id
                )
            ).all()
        )
        missing = sorted(wanted - found)
        if missing:
            raise errors.NotFoundError(
                f"case {case_id} has no finding with id {', '.join(map(str, missing))}"
            )


def _override_json(override: MatchOverride) -> dict[str, object]:
    return {
        "action": OverrideAction(override.action).value,
        "prior_finding": override.prior_finding_pk,
        "current_finding": override.current_finding_pk,
    }


def _record(session: Session, row: ComparisonRow) -> ComparisonRecord:
    tracks = session.scalars(
        select(ComparisonTrackRow)
        .where(ComparisonTrackRow.comparison_fk == row.id)
        .order_by(ComparisonTrackRow.id)
    ).all()
    overrides = session.scalars(
        select(ComparisonOverrideRow)
        .where(ComparisonOverrideRow.comparison_fk == row.id)
        .order_by(ComparisonOverrideRow.position, ComparisonOverrideRow.id)
    ).all()
    return ComparisonRecord(
        comparison_id=row.id,
        case_id=row.case_fk,
        prior_case_id=row.prior_case_fk,
        created_at=row.created_at,
        created_by=row.created_by,
        transform=dict(row.transform or {}),
        quality=dict(row.quality or {}),
        seconds=float(row.seconds),
        response=Response(row.response),
        rule=row.rule,
        summary=dict(row.summary or {}),
        tracks=tuple(
            StoredTrack(
                track_id=t.track_id,
                tracking_uid=t.tracking_uid,
                status=TrackStatus(t.status),
                basis=MatchBasis(t.basis),
                prior_finding_pk=t.prior_finding_fk,
                current_finding_pk=t.current_finding_fk,
                target=bool(t.target),
                dice=t.dice,
                distance_mm=t.distance_mm,
            )
            for t in tracks
        ),
        overrides=tuple(
            MatchOverride(OverrideAction(o.action), o.prior_finding_fk, o.current_finding_fk)
            for o in overrides
        ),
        chosen_targets=tuple(int(v) for v in row.chosen_targets)
        if row.chosen_targets is not None
        else None,
        revises=row.revises_id,
    )

"""Patients' pseudonyms for de-identified exports, and the audited way back to the patient.

A patient gets a pseudonym (``ANON-`` and ten random letters and digits) and a random 32-byte
secret at the first de-identified export; every later export finds the same row, so it carries
the same pseudonym and (seeded by the secret, ``meddiag_desktop.deid``) the same UIDs and date
offset. The row is keyed on the patient's identity (PatientID, name, birth date), like the
``patients`` table, and this table is the only place a pseudonym leads back to a patient:
:func:`lookup_pseudonym` is how an admin asks, and every ask is an audit event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import ConflictError, NotFoundError, PermissionDeniedError
from meddiag_desktop.db.records import AuditAction
from meddiag_desktop.db.roles import Permission, check_in
from meddiag_desktop.db.schema import CaseRow, PatientRow, PseudonymRow

PREFIX = "ANON-"
# Crockford's base32 alphabet: no I, L, O or U, so a pseudonym read aloud is not misheard.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LENGTH = 10  # 50 random bits: a clash is retried, never likely


@dataclass(frozen=True)
class PatientPseudonym:
    """A patient's pseudonym with the secret that seeds the de-identification."""

    pseudonym: str
    secret: str  # hex
    dicom_patient_id: str
    patient_name: str
    birth_date: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class PseudonymLookup:
    """Who a pseudonym is: the identity and the cases of that patient held here now."""

    pseudonym: PatientPseudonym
    case_ids: tuple[int, ...]


def pseudonym_for_case(db: Database, case_id: int) -> PatientPseudonym:
    """The pseudonym of case ``case_id``'s patient, made at the patient's first export."""
    for _attempt in range(3):
        try:
            with db.writing() as session:
                patient = _patient_of_case(session, case_id)
                identity = (patient.dicom_patient_id, patient.name, patient.birth_date)
                row = session.scalar(select(PseudonymRow).where(*_is_identity(identity)))
                if row is None:
                    row = PseudonymRow(
                        pseudonym=_new_pseudonym(),
                        secret=secrets.token_hex(32),
                        dicom_patient_id=identity[0],
                        patient_name=identity[1],
                        birth_date=identity[2],
                        created_by=db.actor[:64],
                    )
                    session.add(row)
                    session.flush()
                return _record(row)
        except ConflictError:
            continue  # another export made this patient's row first, or a pseudonym clashed
    raise NotFoundError(f"no pseudonym could be made for the patient of case {case_id}")


def lookup_pseudonym(db: Database, pseudonym: str) -> PseudonymLookup:
    """Who ``pseudonym`` is; audited (the pseudonym, never the name), found or not.

    Admins only when login is on; a refused attempt is audited too, then refused."""
    wanted = pseudonym.strip().upper()
    refused = ""
    with db.writing() as session:
        try:
            check_in(session, db.actor, Permission.LOOK_UP_PSEUDONYMS)
        except PermissionDeniedError as exc:
            refused = str(exc)
            add_event(
                session,
                db.actor,
                AuditAction.PSEUDONYM_LOOKED_UP,
                "pseudonym",
                wanted[:64],
                None,
                {"pseudonym": wanted[:64], "refused": refused},
            )
    if refused:
        raise PermissionDeniedError(refused)
    with db.writing() as session:
        row = session.scalar(select(PseudonymRow).where(PseudonymRow.pseudonym == wanted))
        add_event(
            session,
            db.actor,
            AuditAction.PSEUDONYM_LOOKED_UP,
            "pseudonym",
            wanted[:64],
            None,
            {"pseudonym": wanted[:64], "found": row is not None},
        )
        if row is None:
            found = None
        else:
            identity = (row.dicom_patient_id, row.patient_name, row.birth_date)
            case_ids = tuple(
                session.scalars(
                    select(CaseRow.id)
                    .join(PatientRow, CaseRow.patient_fk == PatientRow.id)
                    .where(
                        PatientRow.dicom_patient_id == identity[0],
                        PatientRow.name == identity[1],
                        PatientRow.birth_date == identity[2],
                    )
                    .order_by(CaseRow.id)
                ).all()
            )
            found = PseudonymLookup(_record(row), case_ids)
    if found is None:  # raised after the commit: a failed lookup is audited too
        raise NotFoundError(f"no patient has the pseudonym {wanted!r} in this database")
    return found


def _patient_of_case(session: Session, case_id: int) -> PatientRow:
    patient = session.scalar(
        select(PatientRow).join(CaseRow, CaseRow.patient_fk == PatientRow.id).where(
            CaseRow.id == case_id
        )
    )
    if patient is None:
        raise NotFoundError(f"no case {case_id}")
    return patient


def _is_identity(identity: tuple[str, str, str]) -> tuple[ColumnElement[bool], ...]:
    return (
        PseudonymRow.dicom_patient_id == identity[0],
        PseudonymRow.patient_name == identity[1],
        PseudonymRow.birth_date == identity[2],
    )


def _new_pseudonym() -> str:
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def _record(row: PseudonymRow) -> PatientPseudonym:
    return PatientPseudonym(
        pseudonym=row.pseudonym,
        secret=row.secret,
        dicom_patient_id=row.dicom_patient_id,
        patient_name=row.patient_name,
        birth_date=row.birth_date,
        created_at=row.created_at,
        created_by=row.created_by,
    )

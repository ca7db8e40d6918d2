"""A case's review made ready for a de-identified export (PS3.15 Annex E, ``meddiag_desktop.deid``).

What changes against a plain export:

- the patient's pseudonym and key come from the local database (made at the first
  de-identified export of the patient, the same ever after: :mod:`meddiag_desktop.db.pseudonyms`);
- every source image is read, refused when its pixels may show the patient's name (Burned In
  Annotation YES, a secondary capture) unless the user confirmed, de-identified and written as
  a copy (``IM00001.dcm``... in slice order, so no original file name leaves); with ``images``
  the copies are an output (``images/``), else they hold headers only and are removed after
  the SEG and SR were built from them. Either way the SEG and SR are built from the copies, so
  their references (series, instances, frame of reference) are the copies' new UIDs;
- the outcome every writer gets carries the de-identified metadata (the pseudonym for name and
  ID, no birth date, dates moved or gone), mapped tracking UIDs, and warnings and audit lines
  cleaned of the patient's words; the scan's file path is left out. The SEG and SR also get a
  dummy person for the reviewer, as the profile wants person names replaced; the PDF, CSV and
  JSON keep who signed, since a report without its signer means nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydicom.dataset import Dataset

from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.pseudonyms import pseudonym_for_case
from meddiag_desktop.deid import (
    DeidOption,
    DeidSettings,
    PatientKey,
    deidentified_metadata,
    deidentify_dataset,
    deidentify_dates,
)
from meddiag_desktop.deid.burned_in import burned_in_reason
from meddiag_desktop.deid.dataset import mark_deidentified
from meddiag_desktop.deid.metadata import text_cleaner
from meddiag_desktop.deid.options import in_order
from meddiag_desktop.export.errors import ExportError
from meddiag_desktop.private_files import FOLDER_MODE, create_owner_only_file, set_owner_only
from meddiag_desktop.reports.review_outcome import AuditLine, ReviewOutcome

IMAGES_FOLDER = "images"
DUMMY_PERSON = "REVIEWER"  # the reviewer's name in a de-identified SEG and SR (profile: D)
TEMPORARY_MARKER = ".partial"


@dataclass(frozen=True)
class DeidRequest:
    """What the user asked of a de-identified export."""

    options: frozenset[DeidOption] = field(default_factory=frozenset)
    images: bool = False  # write the de-identified source images (images/)
    allow_burned_in: bool = False  # the user confirmed images whose pixels may show text


class BurnedInRefused(ExportError):
    """A source image may show identifying text in its pixels and the user has not confirmed.

    The app asks and tries again with ``allow_burned_in``; the CLI says ``--allow-burned-in``.
    """


@dataclass(frozen=True, eq=False)
class DeidentifiedCase:
    """The outcome as a de-identified export writes it, and the copies it references."""

    outcome: ReviewOutcome  # for the PDF, CSV, JSON and NIfTI
    dicom_outcome: ReviewOutcome  # for the SEG and SR: the reviewer a dummy person too
    settings: DeidSettings
    staging: Path | None  # hidden folder in the export folder holding the copies
    images: bool  # whether the copies are an output (renamed to images/) or scaffolding
    burned_in: tuple[str, ...]  # reasons the user confirmed, one per file that had one

    @property
    def pseudonym(self) -> str:
        return self.settings.key.pseudonym

    def finish_dicom(self, dataset: Dataset) -> Dataset:
        """A SEG or SR made from the copies: its own dates as the profile says, and marked."""
        deidentify_dates(dataset, self.settings)
        mark_deidentified(dataset, self.settings)
        return dataset

    def audit_details(self) -> dict[str, object]:
        """What the audit log keeps of it: options, pseudonym; never the patient's name."""
        return {
            "pseudonym": self.pseudonym,
            "profile": "PS3.15 Basic Application Level Confidentiality Profile",
            "options": [option.value for option in in_order(self.settings.options)],
            "images": len(self.outcome.source_files) if self.images else 0,
            "burned_in_confirmed": list(self.burned_in),
        }

    def discard(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)


def prepare_deidentified(
    db: Database,
    outcome: ReviewOutcome,
    request: DeidRequest,
    folder: Path,
    progress: Callable[[str], None] | None = None,
) -> DeidentifiedCase:
    """The de-identified form of ``outcome`` (see the module docstring); copies are staged in
    a hidden folder inside ``folder``. Raises :class:`BurnedInRefused` or
    :class:`ExportError`, leaving nothing behind."""
    if request.images and not outcome.is_dicom:
        raise ExportError(
            f"case {outcome.case_id}: the scan was not read from DICOM files, so there are "
            "no source images to copy (leave out the images)"
        )
    record = pseudonym_for_case(db, outcome.case_id)
    settings = DeidSettings(PatientKey(record.pseudonym, record.secret), request.options)
    staging: Path | None = None
    copies: list[Path] = []
    burned: list[str] = []
    try:
        if outcome.is_dicom:
            staging = folder / f".{IMAGES_FOLDER}-{uuid.uuid4().hex[:12]}{TEMPORARY_MARKER}"
            staging.mkdir(FOLDER_MODE)
            set_owner_only(staging)  # exact 0700 whatever the umask: it becomes images/
            total = len(outcome.source_files)
            for index, path in enumerate(outcome.source_files, start=1):
                if progress is not None and (index == 1 or index % 25 == 0 or index == total):
                    progress(f"de-identifying image {index} of {total}")
                copies.append(
                    _copy(outcome, path, staging / f"IM{index:05d}.dcm", settings, request, burned)
                )
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    cleaner = text_cleaner(outcome.scan.metadata)
    scan = replace(
        outcome.scan,
        metadata=deidentified_metadata(outcome.scan.metadata, settings),
        warnings=tuple(cleaner.clean(w) for w in outcome.scan.warnings),
        source="",
    )
    shown = replace(
        outcome,
        scan=scan,
        source_files=tuple(copies),
        findings=tuple(
            replace(r, tracking_uid=settings.key.uid(r.tracking_uid)) for r in outcome.findings
        ),
        warnings=tuple(cleaner.clean(w) for w in outcome.warnings),
        audit=tuple(
            AuditLine(a.occurred_at, a.actor, a.action, cleaner.clean(a.text))
            for a in outcome.audit
        ),
    )
    dicom = replace(
        shown,
        signed_by=DUMMY_PERSON if shown.signed_by else None,
        exported_by=DUMMY_PERSON,
    )
    return DeidentifiedCase(shown, dicom, settings, staging, request.images, tuple(burned))


def _copy(
    outcome: ReviewOutcome,
    source: Path,
    target: Path,
    settings: DeidSettings,
    request: DeidRequest,
    burned: list[str],
) -> Path:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(source, stop_before_pixels=not request.images)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise ExportError(f"{source}: the source image cannot be read ({exc})") from exc
    reason = burned_in_reason(dataset)
    if reason and not request.allow_burned_in:
        raise BurnedInRefused(
            f"case {outcome.case_id} cannot be exported de-identified: source image "
            f"{source.name} may show the patient's identity in its pixels: {reason}. Header "
            "de-identification cannot remove it; nothing was exported. Check the images and "
            "confirm (--allow-burned-in) to export anyway"
        )
    if reason:
        burned.append(f"{target.name}: {reason}")
    deidentify_dataset(dataset, settings)
    try:
        create_owner_only_file(target)  # 0600 before any byte is written, like every output
        dataset.save_as(target, enforce_file_format=True)
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError):
            target.unlink(missing_ok=True)
        raise ExportError(
            f"the de-identified copy of {source.name} could not be written ({exc})"
        ) from exc
    return target

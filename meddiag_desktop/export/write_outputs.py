"""Export one case: every chosen output from one :class:`ReviewOutcome`, all or nothing, audited.

Order of an export, and what a failure leaves:

1. The case is read (:func:`~.outcome_from_case.outcome_from_case`): no successful run and no
   manual finding, or a scan whose files changed since import, is an :class:`ExportError`
   before any file is touched.
2. ``out_dir`` is created if missing and probed with a temporary file; a folder that cannot be
   made or written is an :class:`ExportError` naming it. A folder in the way of an output's
   file name is refused too (a rename would fail at the end).
3. Each output is written under a hidden temporary name in ``out_dir`` (same file system, so
   the rename is atomic), ending in the real suffix (SimpleITK picks the format from it; never
   a ``.nii`` beside a ``.nii.gz``, PITFALLS.md), and fsynced. An output this case cannot have
   (a SEG or SR of a NIfTI scan, or of a review that kept nothing) is skipped with the writer's
   reason when all outputs were asked for, and an :class:`ExportError` when it was asked for by
   name.
4. Only when every file is complete are they renamed to their names (``report.pdf``, ...), in
   :data:`OUTPUTS` order, and the folder fsynced.
5. The export is recorded as an audit event (``report.exported``: who, when, the case, each
   file's name, size and sha256) in the case's database. If that fails the files are removed:
   there is no export the audit log does not know.

A de-identified export (``deidentify``, :mod:`.deidentified`) stages de-identified copies of
the source images in a hidden folder of ``out_dir`` after step 2, builds the SEG and SR from
them and every other output from the de-identified outcome, renames the copies to ``images/``
in step 4 when they were asked for (else removes them), and records the pseudonym and options
(never the patient's name) in step 5.

Any failure in 3-5 (a writer raising, a full disk, the caller's progress callback raising to
cancel) removes every temporary file, and in 4-5 the files this export already renamed, so no
half-written or unrecorded file remains, and the message says why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meddiag_desktop.db.audit import log_event
from meddiag_desktop.db.crash_safe_files import fsync_folder
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import CaseDatabaseError, NotFoundError
from meddiag_desktop.db.masks import file_sha256
from meddiag_desktop.db.records import AuditAction
from meddiag_desktop.domain import Progress
from meddiag_desktop.export.deidentified import (
    IMAGES_FOLDER,
    DeidentifiedCase,
    DeidRequest,
    prepare_deidentified,
)
from meddiag_desktop.export.errors import ExportError
from meddiag_desktop.export.label_map_file import write_label_map_file
from meddiag_desktop.export.outcome_from_case import outcome_from_case
from meddiag_desktop.export.table_files import write_findings_csv, write_findings_json
from meddiag_desktop.private_files import owner_only_folder, set_owner_only
from meddiag_desktop.reports.errors import ReportError
from meddiag_desktop.reports.pdf_report import PAGE_SIZES, write_pdf_report
from meddiag_desktop.reports.review_outcome import ReviewOutcome
from meddiag_desktop.scans import ScanError

__all__ = ["FILE_NAMES", "OUTPUTS", "ExportError", "ExportResult", "export_case"]

ProgressCallback = Callable[[Progress], None]

OUTPUTS = ("pdf", "seg", "sr", "nifti", "csv", "json")
FILE_NAMES: Mapping[str, str] = {
    "pdf": "report.pdf",
    "seg": "seg.dcm",
    "sr": "sr.dcm",
    "nifti": "labels.nii.gz",
    "csv": "findings.csv",
    "json": "findings.json",
}
TEMPORARY_MARKER = ".partial"


@dataclass(frozen=True)
class ExportResult:
    case_id: int
    out_dir: Path
    files: tuple[Path, ...]  # written, in OUTPUTS order
    skipped: Mapping[str, str]  # output name -> reason in words (e.g. SEG of a NIfTI case)
    draft: bool  # True when the case is not signed
    pseudonym: str | None = None  # a de-identified export: the patient's pseudonym
    images: Path | None = None  # a de-identified export with images: their folder


def export_case(
    db: Database,
    case_id: int,
    out_dir: Path,
    outputs: Collection[str] | None = None,
    progress: ProgressCallback | None = None,
    page_size: str = "A4",
    deidentify: DeidRequest | None = None,
) -> ExportResult:
    """Write case ``case_id``'s ``outputs`` (None: all of :data:`OUTPUTS`) into ``out_dir``,
    de-identified when ``deidentify`` says how; see the module docstring for the order and what
    a failure leaves."""
    from meddiag_desktop.db.roles import Permission, require

    require(db, Permission.EXPORT)  # viewers look at cases; they do not take copies away
    wanted = _wanted(outputs)
    if page_size not in PAGE_SIZES:
        raise ExportError(f"page size must be one of {', '.join(PAGE_SIZES)}, not {page_size!r}")
    report = progress or (lambda _progress: None)
    report(Progress(0.0, "exporting", f"reading case {case_id}"))
    try:
        outcome = outcome_from_case(db, case_id)
    except NotFoundError as exc:
        raise ExportError(str(exc)) from exc
    folder = _writable_folder(Path(out_dir))
    if deidentify is not None and deidentify.images and (folder / IMAGES_FOLDER).exists():
        raise ExportError(
            f"{folder / IMAGES_FOLDER} already exists: a de-identified export with images "
            "writes that folder; move it away or choose another folder"
        )
    staged: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    placed: list[Path] = []
    deid: DeidentifiedCase | None = None
    try:
        if deidentify is not None:
            deid = prepare_deidentified(
                db, outcome, deidentify, folder,
                lambda text: report(Progress(0.0, "de-identifying", text)),
            )
            outcome = deid.outcome
        writers = _Writers(outcome, page_size, deid)
        for index, name in enumerate(wanted):
            target = folder / FILE_NAMES[name]
            report(Progress((index + 1) / (len(wanted) + 2), "exporting", f"writing {target.name}"))
            temporary = _temporary_name(target)
            try:
                writers.write(name, temporary)
            except ReportError as exc:
                temporary.unlink(missing_ok=True)
                if outputs is not None:
                    raise ExportError(
                        f"{target.name} cannot be made for case {case_id}: {exc}"
                    ) from exc
                skipped[name] = str(exc)
                continue
            except (OSError, ScanError) as exc:
                raise ExportError(
                    f"{target.name} could not be written in {folder} ({_reason(exc)}); nothing "
                    "was exported"
                ) from exc
            staged[name] = temporary
            set_owner_only(temporary)  # 0600 whatever the umask: patient data
            _fsync_file(temporary)
        report(Progress((len(wanted) + 1) / (len(wanted) + 2), "exporting", "recording"))
        files = [_file_entry(name, folder / FILE_NAMES[name], staged[name]) for name in staged]
        for name, temporary in staged.items():
            target = folder / FILE_NAMES[name]
            try:
                os.replace(temporary, target)
            except OSError as exc:
                raise ExportError(
                    f"{target.name} could not be put in place in {folder} ({_reason(exc)}); "
                    "nothing was exported"
                ) from exc
            placed.append(target)
        images = _place_images(deid, folder)
        fsync_folder(folder)
        _record(db, outcome, folder, files, skipped, deid)
    except BaseException:
        for path in (*staged.values(), *placed):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if deid is not None:
            deid.discard()
            if deid.images and deid.staging is not None:
                shutil.rmtree(folder / IMAGES_FOLDER, ignore_errors=True)
        raise
    report(Progress(1.0, "exported", f"{len(placed)} file(s) in {folder}"))
    return ExportResult(
        case_id, folder, tuple(placed), skipped, outcome.draft,
        pseudonym=deid.pseudonym if deid is not None else None, images=images,
    )


class _Writers:
    """The writer of each output; the SEG is built once and reused by the SR that cites it.

    De-identified (``deid``), the SEG and SR are built from its DICOM outcome (the copies, a
    dummy reviewer) and finished by it (their own dates, the de-identification markers).
    """

    def __init__(
        self, outcome: ReviewOutcome, page_size: str, deid: DeidentifiedCase | None = None
    ) -> None:
        self.outcome = outcome
        self.page_size = page_size
        self.deid = deid
        self.dicom_outcome = deid.dicom_outcome if deid is not None else outcome
        self._seg: Any = None
        self._seg_error: ReportError | None = None

    def write(self, name: str, path: Path) -> None:
        outcome = self.outcome
        if name == "pdf":
            write_pdf_report(outcome, path, self.page_size)
        elif name == "seg":
            self.segmentation().save_as(path)
        elif name == "sr":
            from meddiag_desktop.reports.dicom_sr import build_sr

            sr = build_sr(self.dicom_outcome, self.segmentation())
            if self.deid is not None:
                self.deid.finish_dicom(sr)
            sr.save_as(path)
        elif name == "nifti":
            write_label_map_file(outcome, path)
        elif name == "csv":
            write_findings_csv(outcome, path)
        elif name == "json":
            write_findings_json(outcome, path)
        else:  # _wanted() let an unknown name through
            raise AssertionError(name)

    def segmentation(self) -> Any:
        """The DICOM SEG of the kept findings (the SR's segment references point into it)."""
        if self._seg_error is not None:
            raise self._seg_error
        if self._seg is None:
            from meddiag_desktop.reports.dicom_seg import build_seg

            try:
                self._seg = build_seg(self.dicom_outcome)
            except ReportError as exc:
                self._seg_error = exc
                raise
            if self.deid is not None:
                self.deid.finish_dicom(self._seg)
        return self._seg


def _wanted(outputs: Collection[str] | None) -> tuple[str, ...]:
    if outputs is None:
        return OUTPUTS
    unknown = sorted(set(outputs) - set(OUTPUTS))
    if unknown:
        raise ExportError(
            f"unknown output(s) {', '.join(unknown)}: choose from {', '.join(OUTPUTS)}"
        )
    if not outputs:
        raise ExportError(f"no output chosen: choose from {', '.join(OUTPUTS)}")
    return tuple(name for name in OUTPUTS if name in outputs)


def _writable_folder(folder: Path) -> Path:
    """``folder``, created if missing, after a probe file was written and removed there."""
    folder = folder.expanduser()
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is not a folder: choose a folder for the export")
    try:
        owner_only_folder(folder, fix_existing=False)  # what is created here is 0700
    except OSError as exc:
        raise ExportError(f"the folder {folder} cannot be created ({_reason(exc)})") from exc
    probe = folder / f".meddiag-probe-{uuid.uuid4().hex}{TEMPORARY_MARKER}"
    try:
        with open(probe, "xb") as handle:
            handle.write(b"\0" * 4096)
    except OSError as exc:
        raise ExportError(f"the folder {folder} cannot be written ({_reason(exc)})") from exc
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    for name in FILE_NAMES.values():
        if (folder / name).is_dir():
            raise ExportError(
                f"{folder / name} is a folder: an export writes a file of that name there; "
                "move it away or choose another folder"
            )
    return folder.resolve()


def _temporary_name(target: Path) -> Path:
    """A hidden name beside ``target`` with its full suffix (``.nii.gz``, not ``.gz``)."""
    stem, _, suffix = target.name.partition(".")
    return target.with_name(f".{stem}-{uuid.uuid4().hex[:12]}{TEMPORARY_MARKER}.{suffix}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _file_entry(name: str, target: Path, staged: Path) -> dict[str, Any]:
    return {
        "output": name,
        "name": target.name,
        "path": str(target),
        "bytes": staged.stat().st_size,
        "sha256": file_sha256(staged),
    }


def _place_images(deid: DeidentifiedCase | None, folder: Path) -> Path | None:
    """The staged de-identified copies renamed to ``images/`` when asked for, else removed."""
    if deid is None or deid.staging is None:
        return None
    if not deid.images:
        deid.discard()
        return None
    target = folder / IMAGES_FOLDER
    try:
        for copy in deid.staging.iterdir():
            _fsync_file(copy)
        fsync_folder(deid.staging)
        os.replace(deid.staging, target)
    except OSError as exc:
        raise ExportError(
            f"the de-identified images could not be put in place in {folder} ({_reason(exc)}); "
            "nothing was exported"
        ) from exc
    return target


def _record(
    db: Database,
    outcome: ReviewOutcome,
    folder: Path,
    files: list[dict[str, Any]],
    skipped: Mapping[str, str],
    deid: DeidentifiedCase | None = None,
) -> None:
    details: dict[str, Any] = {
        "folder": str(folder),
        "files": files,
        "skipped": dict(skipped),
        "draft": outcome.draft,
        "signed_by": outcome.signed_by,
        "findings": [r.finding_pk for r in outcome.findings],
        "model_run_id": outcome.model.run_id if outcome.model else None,
    }
    if deid is not None:
        details["deidentified"] = deid.audit_details()
    try:
        log_event(db, AuditAction.REPORT_EXPORTED, outcome.case_id, details)
    except CaseDatabaseError as exc:
        raise ExportError(
            f"the export of case {outcome.case_id} could not be recorded in the audit log "
            f"({exc}); its files were removed"
        ) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, ScanError):
        return exc.reason
    return str(exc)

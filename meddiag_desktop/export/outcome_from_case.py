"""A stored case as the :class:`ReviewOutcome` every output is written from.

What goes in, and from where:

- the scan, loaded again from the imported series' files, after checking that they are still
  the files that were imported (their sha256 fingerprint): outputs measured on one scan and
  referencing another would be wrong without anyone noticing;
- the current (latest successful) run's model as it ran (name, version, sha256, provider, the
  card's intended use stored with the run);
- the kept findings only: the current run's AI findings accepted or edited, and the manual
  ones not rejected, with the values the database holds, who decided and when (the latest
  review; for a manual finding, who added it); each one's voxels from the case's label map
  (:func:`~meddiag_desktop.db.case_label_map.case_label_map`, the map the viewer shows),
  found by the viewer's rule (:mod:`.finding_regions`);
- the sign-off, and the case's audit trail as lines of text.

Numbering: an AI finding keeps its number (``#N`` in ``meddiag cases show``); manual findings
(``M1``, ``M2`` in the app) follow the run's highest number, so every kept finding of an export
has its own number and tracking identifier. Tracking UIDs are derived from the finding's
database id and the series UID, so every export of a case names a finding by the same UID; a
finding that the case's newest follow-up comparison matched to an earlier study's lesion takes
that lesion's UID instead (:func:`~meddiag_desktop.db.comparisons.continued_tracking_uids`), so
the SR of every study of a patient names one lesion by one UID.

A case without a successful run but with manual findings is exported as the radiologist's own
(no model section); it cannot be signed (sign-off needs a run), so its outputs are DRAFT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid

from meddiag_desktop.db.audit import case_history
from meddiag_desktop.db.case_label_map import case_label_map
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.comparisons import continued_tracking_uids
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.errors import NotImportableError
from meddiag_desktop.db.importing import fingerprint_files
from meddiag_desktop.db.records import (
    AuditAction,
    AuditEvent,
    CaseDetail,
    ModelRun,
    Review,
    ReviewStatus,
    SeriesRecord,
    StoredFinding,
)
from meddiag_desktop.domain import FindingSource, SeriesInfo, SeriesKind, Volume
from meddiag_desktop.export.errors import ExportError
from meddiag_desktop.export.finding_regions import finding_region
from meddiag_desktop.export.follow_up_history import follow_up_summary
from meddiag_desktop.reports.review_outcome import (
    AuditLine,
    KeptDecision,
    ModelSummary,
    ReportedFinding,
    ReviewOutcome,
)
from meddiag_desktop.scans import ScanError, discover, load

MANUAL_COLOUR = "#ffd24a"  # the app's colour for a lesion painted on an empty map
_KEPT = {ReviewStatus.ACCEPTED: KeptDecision.ACCEPTED, ReviewStatus.EDITED: KeptDecision.EDITED}


def outcome_from_case(db: Database, case_id: int) -> ReviewOutcome:
    """The review of case ``case_id`` as it is stored now; :class:`ExportError` when it has
    nothing to export or its scan is no longer the one imported."""
    detail = get_case(db, case_id)
    run = detail.current_run
    if run is None and not detail.manual_findings:
        raise ExportError(
            f"case {case_id} has no successful model run and no manual finding: nothing to export"
        )
    scan, source_files = load_case_scan(detail)
    shown = case_label_map(db, detail)
    labels = shown.labels_zyx if shown is not None else None
    if labels is not None and labels.shape != scan.shape_zyx:
        raise ExportError(
            f"case {case_id}: its label map has {labels.shape} voxels (z, y, x), the scan "
            f"{scan.shape_zyx}: the mask does not belong to this scan"
        )
    events = case_history(db, case_id)
    continued = continued_tracking_uids(db, case_id)
    findings = _kept_findings(detail, labels, events, scan.metadata.series_uid, continued)
    names = dict(shown.label_names) if shown is not None else {}
    for reported in findings:
        names.setdefault(reported.finding.label, reported.finding.label_name)
    colours = {**{n: MANUAL_COLOUR for n in names}, **_label_colours(run)}
    return ReviewOutcome(
        case_id=case_id,
        scan=scan,
        source_files=source_files,
        findings=findings,
        label_names=names,
        label_colours={n: colours[n] for n in names},
        model=_model(run),
        signed_by=detail.signed_by,
        signed_at=detail.signed_at,
        exported_by=db.actor,
        exported_at=datetime.now(UTC),
        audit=tuple(audit_line(e) for e in events),
        follow_up=follow_up_summary(db, case_id),
        warnings=tuple(dict.fromkeys((*scan.warnings, *(run.warnings if run else ())))),
    )


def load_case_scan(detail: CaseDetail) -> tuple[Volume, tuple[Path, ...]]:
    """The case's scan from the files it was imported from, and (DICOM) those files in slice
    order; refuses when they are gone or are no longer the files that were imported."""
    series, case_id = detail.series, detail.case_id
    location = Path(series.location)
    if not location.exists():
        raise ExportError(
            f"the scan of case {case_id} is no longer at {location}: it was moved or deleted"
        )
    try:
        found = _imported_series(series, location)
        fingerprint = fingerprint_files(found.files)
    except (ScanError, NotImportableError) as exc:
        raise ExportError(f"the scan of case {case_id} cannot be read again: {exc}") from exc
    if fingerprint.sha256 != series.fingerprint:
        raise ExportError(
            f"the scan files of case {case_id} in {location} changed since they were imported "
            "(their sha256 differs): its findings were measured on other data"
        )
    try:
        scan = load(found)
    except ScanError as exc:
        raise ExportError(f"the scan of case {case_id} cannot be loaded: {exc}") from exc
    files = tuple(Path(f) for f in found.files) if found.kind is not SeriesKind.FILE else ()
    return scan, files


def _imported_series(series: SeriesRecord, location: Path) -> SeriesInfo:
    if series.kind is SeriesKind.FILE:
        path = location / series.files[0] if series.files else location
        loadable = [s for s in discover(path) if s.loadable]
        if not loadable:
            raise ScanError(path, "is no longer a loadable image file")
        return loadable[0]
    matches = [s for s in discover(location) if s.key == series.key and s.loadable]
    if not matches:
        raise ScanError(location, f"no longer holds the imported series {series.key}")
    return matches[0]


def _kept_findings(
    detail: CaseDetail,
    labels: Any,
    events: Sequence[AuditEvent],
    series_uid: str,
    continued: Mapping[int, str],
) -> tuple[ReportedFinding, ...]:
    run = detail.current_run
    ai = run.findings if run is not None else ()
    last_review = _latest_reviews(detail.reviews)
    added = {e.object_id: e for e in events if e.action == AuditAction.FINDING_ADDED.value}
    highest = max((s.finding.finding_id for s in ai), default=0)
    kept: list[ReportedFinding] = []
    for stored in ai:
        decision = _KEPT.get(stored.review_status)
        if decision is None:
            continue  # pending or rejected: in no output
        review = last_review.get(stored.finding_pk)
        who = (review.reviewer, review.decided_at) if review else ("", None)
        kept.append(
            _reported(
                detail,
                stored,
                stored.finding.finding_id,
                decision,
                who,
                labels,
                series_uid,
                continued,
            )
        )
    for position, stored in enumerate(_in_order(detail.manual_findings), start=1):
        if stored.review_status is ReviewStatus.REJECTED:
            continue
        review = last_review.get(stored.finding_pk)
        event = added.get(str(stored.finding_pk))
        if review is not None:
            who = (review.reviewer, review.decided_at)
        else:
            who = (event.actor, event.occurred_at) if event else ("", None)
        finding = replace(stored.finding, source=FindingSource.MANUAL)
        kept.append(
            _reported(
                detail,
                replace(stored, finding=finding),
                highest + position,
                KeptDecision.MANUAL,
                who,
                labels,
                series_uid,
                continued,
            )
        )
    return tuple(sorted(kept, key=lambda r: r.number))


def _reported(
    detail: CaseDetail,
    stored: StoredFinding,
    number: int,
    decision: KeptDecision,
    who: tuple[str, datetime | None],
    labels: Any,
    series_uid: str,
    continued: Mapping[int, str],
) -> ReportedFinding:
    name = finding_name(stored)
    region = finding_region(labels, stored.finding) if labels is not None else None
    if region is None:
        raise ExportError(
            f"case {detail.case_id}: finding {name} is kept but its lesion is not in the case's "
            "label map (erased after the decision?): edit or reject it, then export again"
        )
    return ReportedFinding(
        number=number,
        finding_pk=stored.finding_pk,
        # A lesion followed from an earlier study keeps that study's UID (db.comparisons).
        tracking_uid=continued.get(stored.finding_pk)
        or tracking_uid(series_uid, detail.case_id, stored.finding_pk),
        finding=stored.finding,
        decision=decision,
        decided_by=who[0],
        decided_at=who[1],
        region=region,
    )


def finding_name(stored: StoredFinding) -> str:
    """``#2`` for an AI finding, ``M1`` for a manual one: as the app and ``cases show`` say."""
    prefix = "M" if stored.finding.source is FindingSource.MANUAL else "#"
    return f"{prefix}{stored.finding.finding_id}"


def tracking_uid(series_uid: str, case_id: int, finding_pk: int) -> str:
    """The same UID in every export of the finding (derived, not random)."""
    return str(
        generate_uid(entropy_srcs=["meddiag finding", series_uid, str(case_id), str(finding_pk)])
    )


def _in_order(findings: Iterable[StoredFinding]) -> list[StoredFinding]:
    return sorted(findings, key=lambda s: (s.finding.finding_id, s.finding_pk))


def _latest_reviews(reviews: Sequence[Review]) -> dict[int, Review]:
    latest: dict[int, Review] = {}
    for review in reviews:  # oldest first: the last one wins
        latest[review.finding_pk] = review
    return latest


def _model(run: ModelRun | None) -> ModelSummary | None:
    if run is None:
        return None
    options = run.parameters.get("options")
    return ModelSummary(
        name=run.model_name,
        version=run.model_version,
        sha256=run.model_sha256,
        provider=run.provider,
        intended_use=str(run.parameters.get("intended_use") or ""),
        run_id=run.run_id,
        run_finished_at=run.finished_at,
        run_warnings=run.warnings,
        parameters=dict(options) if isinstance(options, Mapping) else {},
    )


def _label_colours(run: ModelRun | None) -> dict[int, str]:
    """The colours of the card stored with the run (``parameters['output']['labels']``)."""
    output = run.parameters.get("output") if run is not None else None
    labels = output.get("labels", []) if isinstance(output, Mapping) else []
    return {
        int(label["value"]): str(label["colour"])
        for label in labels
        if isinstance(label, Mapping) and "value" in label and "colour" in label
    }


def audit_line(event: AuditEvent) -> AuditLine:
    """One audit event as the report prints it: the action and its details in words."""
    details = event.details or {}
    action = event.action.value if isinstance(event.action, AuditAction) else str(event.action)
    words = {
        AuditAction.CASE_IMPORTED.value: "case imported",
        AuditAction.RUN_SAVED.value: "model run stored",
        AuditAction.FINDING_ADDED.value: "manual finding added",
        AuditAction.MASK_EDIT_SAVED.value: "edited mask saved",
        AuditAction.CASE_SIGNED.value: "case signed",
        AuditAction.CASE_VIEWED.value: "case viewed",
        AuditAction.REPORT_EXPORTED.value: "case exported",
        AuditAction.COMPARISON_SAVED.value: "compared with an earlier study",
        AuditAction.COMPARISON_REVISED.value: "follow-up comparison corrected",
    }
    if action == AuditAction.FINDING_REVIEWED.value:
        text = f"finding #{details.get('finding_number', '?')} {details.get('decision', '?')}"
        if details.get("reason"):
            text += f" ({details['reason']})"
    elif action == AuditAction.REPORT_EXPORTED.value:
        files = ", ".join(Path(str(f.get("name", "?"))).name for f in details.get("files", ()))
        text = f"exported {files}" if files else "exported"
    else:
        text = words.get(action, action)
    return AuditLine(event.occurred_at, event.actor, action, text)

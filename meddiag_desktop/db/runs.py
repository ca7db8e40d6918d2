"""Model runs: save what a model found (findings + mask) in one transaction, and read masks back.

The inference layer is a sibling of this one (import-linter keeps them independent), so the
result is taken by shape: anything with the attributes of ``InferenceResult`` will do
(:class:`InferenceOutput`). The mask file is written before the transaction and removed again if
the transaction fails; see :mod:`meddiag_desktop.db.masks` for why a crash cannot leave a
committed run without its file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meddiag_desktop.db import errors, records_from_rows
from meddiag_desktop.db.audit import add_event
from meddiag_desktop.db.engine import Database
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.masks import WrittenMask, mask_written, read_verified
from meddiag_desktop.db.records import AuditAction, CaseStatus, ModelRun, ReviewStatus, RunOutcome
from meddiag_desktop.db.schema import CaseRow, FindingRow, MaskRow, ModelRunRow, SeriesRow, now_utc
from meddiag_desktop.domain import Finding, Segmentation, SeriesInfo, SeriesKind, Volume

# Card fields that say how the model ran (its provenance); the rest of a card is documentation.
_CARD_PARAMETER_FIELDS = (
    "task",
    "modality",
    "anatomy",
    "onnx_file",
    "input",
    "output",
    "postprocessing",
    "sliding_window",
    "intended_use",  # as the card said at the run: the exported report prints it
)


class ModelIdentity(Protocol):
    """What identifies a model: ``ModelCard`` has these and more."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def sha256(self) -> str: ...


class ProviderInfo(Protocol):
    @property
    def used(self) -> str: ...

    @property
    def short_name(self) -> str: ...

    @property
    def attempts(self) -> tuple[tuple[str, str], ...]: ...


class InferenceOutput(Protocol):
    """The shape of ``meddiag_desktop.inference.pipeline.InferenceResult``."""

    @property
    def segmentation(self) -> Segmentation: ...

    @property
    def findings(self) -> tuple[Finding, ...]: ...

    @property
    def card(self) -> ModelIdentity: ...

    @property
    def provider(self) -> ProviderInfo: ...

    @property
    def timings_s(self) -> Mapping[str, float]: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...


CaseReference = int | SeriesInfo  # a case id, or a series (imported first if new)


def store_inference(
    db: Database,
    case: CaseReference,
    volume: Volume,
    result: InferenceOutput,
    *,
    parameters: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
) -> int:
    """Save a successful run: run row, findings, mask file and row, case status; the run id.

    ``parameters`` adds what the caller chose (provider, overlap, batch size) to the card's own.
    Raises MaskWriteError (disk full, read-only folder) with nothing saved, CaseStateError for
    a signed case or a volume from another series.
    """
    case_id = _case_id(db, case)
    _check_case_accepts_runs(db, case_id, volume)
    labels = result.segmentation.labels_zyx
    # The file is journaled as pending until the transaction ends (masks.mask_written).
    with (
        mask_written(
            db.masks_dir, volume, labels, database=db.display_url, cipher=db.mask_cipher
        ) as mask,
        db.writing() as session,
    ):
        run = _add_run(
            session,
            db.actor,
            case_id,
            result.card,
            RunOutcome.SUCCEEDED,
            _provenance(result, parameters, started_at),
        )
        _add_findings(session, case_id, run.id, result.findings)
        _add_mask(session, run.id, mask, result.segmentation.label_names)
        _after_run(session, db.actor, case_id, run, len(result.findings), mask)
        return run.id


def store_failed_run(
    db: Database,
    case: CaseReference,
    card: ModelIdentity,
    outcome: RunOutcome,
    error: str,
    *,
    timings_s: Mapping[str, float] | None = None,
    provider: str = "",
    parameters: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
) -> int:
    """Record a cancelled or failed run (no findings, no mask), so the attempt is on file."""
    if outcome is RunOutcome.SUCCEEDED:
        raise ValueError("a successful run is stored with store_inference")
    case_id = _case_id(db, case)
    provenance = {
        "provider": provider,
        "provider_attempts": [],
        "parameters": {**_card_parameters(card), "options": dict(parameters or {})},
        "timings_s": {k: float(v) for k, v in (timings_s or {}).items()},
        "warnings": [],
        "started_at": started_at or _started(timings_s),
        "error": error,
    }
    with db.writing() as session:
        _check_not_signed(session, case_id)
        run = _add_run(session, db.actor, case_id, card, outcome, provenance)
        _after_run(session, db.actor, case_id, run, 0, None)
        return run.id


def get_run(db: Database, run_id: int) -> ModelRun:
    with db.reading() as session:
        row = session.get(ModelRunRow, run_id)
        if row is None:
            raise errors.NotFoundError(f"there is no model run {run_id}")
        findings = session.scalars(
            select(FindingRow).where(FindingRow.run_fk == run_id).order_by(FindingRow.id)
        ).all()
        mask = session.scalars(select(MaskRow).where(MaskRow.run_fk == run_id)).first()
        return records_from_rows.model_run(
            row,
            tuple(records_from_rows.stored_finding(f) for f in findings),
            records_from_rows.mask_record(mask) if mask is not None else None,
        )


def load_mask(db: Database, run_id: int) -> Volume:
    """The run's label map, verified (sha256 and geometry) against what was stored."""
    run = get_run(db, run_id)
    if run.mask is None:
        raise errors.NotFoundError(f"model run {run_id} has no mask ({run.outcome.value})")
    return read_verified(db.masks_dir, run.mask, db.mask_cipher)


def mask_path(db: Database, run_id: int) -> Path | None:
    run = get_run(db, run_id)
    return None if run.mask is None else db.masks_dir / run.mask.relative_path


def _case_id(db: Database, case: CaseReference) -> int:
    if isinstance(case, SeriesInfo):
        return import_series(db, case).case_id
    return int(case)


def _check_case_accepts_runs(db: Database, case_id: int, volume: Volume) -> None:
    """Refuse before the (slow) mask write; checked again under the write lock."""
    with db.reading() as session:
        _check_not_signed(session, case_id, lock=False)
        kind, uid = session.execute(
            select(SeriesRow.kind, SeriesRow.series_uid)
            .join(CaseRow, CaseRow.series_fk == SeriesRow.id)
            .where(CaseRow.id == case_id)
        ).one()
    given = volume.metadata.series_uid
    if kind != SeriesKind.FILE.value and uid and given and given != uid:
        raise errors.CaseStateError(
            f"the scan given is series {given}, but case {case_id} is series {uid}"
        )


def _check_not_signed(session: Session, case_id: int, lock: bool = True) -> CaseRow:
    case = session.get(CaseRow, case_id, with_for_update=lock)
    if case is None:
        raise errors.NotFoundError(f"there is no case {case_id}")
    if case.status is CaseStatus.SIGNED:
        raise errors.CaseStateError(f"case {case_id} is signed; its findings are final")
    return case


def _provenance(
    result: InferenceOutput, parameters: Mapping[str, Any] | None, started_at: datetime | None
) -> dict[str, Any]:
    return {
        "provider": result.provider.short_name,
        "provider_attempts": [[p, why] for p, why in result.provider.attempts],
        "parameters": {
            **_card_parameters(result.card),
            "options": dict(parameters or {}),
            "signature": _signature(result),
            "runtime": _runtime(result),
        },
        "timings_s": {k: float(v) for k, v in result.timings_s.items()},
        "warnings": list(result.warnings),
        "started_at": started_at or _started(result.timings_s),
        "error": "",
    }


def _signature(result: InferenceOutput) -> dict[str, Any] | None:
    """Who signed the model (``InferenceResult.signature``), as JSON; None for a result that
    does not say (a run from before signed packages, or a stand-in in a test)."""
    signature = getattr(result, "signature", None)
    to_dict = getattr(signature, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else None


def _runtime(result: InferenceOutput) -> dict[str, Any] | None:
    """The library and precision that ran the model (``InferenceResult.runtime``), as JSON."""
    to_dict = getattr(getattr(result, "runtime", None), "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else None


def _started(timings_s: Mapping[str, float] | None) -> datetime:
    total = float((timings_s or {}).get("total", 0.0))
    return now_utc() - timedelta(seconds=total)


def _add_run(
    session: Session,
    actor: str,
    case_id: int,
    card: ModelIdentity,
    outcome: RunOutcome,
    provenance: dict[str, Any],
) -> ModelRunRow:
    _check_not_signed(session, case_id)
    run = ModelRunRow(
        case_fk=case_id,
        model_name=card.name,
        model_version=card.version,
        model_sha256=card.sha256,
        provider=provenance["provider"],
        provider_attempts=provenance["provider_attempts"],
        parameters=provenance["parameters"],
        timings_s=provenance["timings_s"],
        warnings=provenance["warnings"],
        started_at=provenance["started_at"],
        finished_at=now_utc(),
        outcome=outcome,
        error=provenance["error"],
        actor=actor[:64],
    )
    session.add(run)
    session.flush()
    return run


def _add_findings(
    session: Session, case_id: int, run_id: int, findings: tuple[Finding, ...]
) -> None:
    session.add_all(
        FindingRow(
            case_fk=case_id,
            run_fk=run_id,
            source=f.source,
            review_status=ReviewStatus.PENDING,
            **records_from_rows.finding_values(f),
        )
        for f in findings
    )


def _add_mask(
    session: Session, run_id: int, mask: WrittenMask, label_names: Mapping[int, str]
) -> None:
    session.add(
        MaskRow(
            run_fk=run_id,
            relative_path=mask.relative_path,
            sha256=mask.sha256,
            size_bytes=mask.size_bytes,
            geometry=records_from_rows.geometry_to_json(mask.geometry),
            label_names={str(k): v for k, v in label_names.items()},
        )
    )


def _after_run(
    session: Session,
    actor: str,
    case_id: int,
    run: ModelRunRow,
    finding_count: int,
    mask: WrittenMask | None,
) -> None:
    case = session.get(CaseRow, case_id)
    assert case is not None
    before = CaseStatus(case.status)
    if run.outcome is RunOutcome.SUCCEEDED:
        # The worklist's count (and its sort key): this run's findings plus the manual ones.
        manual = session.scalar(
            select(func.count())
            .select_from(FindingRow)
            .where(FindingRow.case_fk == case_id, FindingRow.run_fk.is_(None))
        )
        case.finding_count = finding_count + int(manual or 0)
    if run.outcome is RunOutcome.SUCCEEDED and before is not CaseStatus.IN_REVIEW:
        case.status = CaseStatus.ANALYSED
    elif run.outcome is RunOutcome.FAILED and before is CaseStatus.NEW:
        case.status = CaseStatus.FAILED
    case.updated_at = now_utc()
    add_event(
        session,
        actor,
        AuditAction.RUN_SAVED,
        "model_run",
        run.id,
        case_id,
        {
            "model": run.model_name,
            "version": run.model_version,
            "sha256": run.model_sha256,
            "provider": run.provider,
            "outcome": RunOutcome(run.outcome).value,
            "error": run.error,
            "overrides": _overrides(run.parameters),
            "signature": (run.parameters or {}).get("signature"),
            "findings": finding_count,
            "mask": mask.relative_path if mask else None,
            "mask_sha256": mask.sha256 if mask else None,
            "status": {"from": before.value, "to": CaseStatus(case.status).value},
        },
    )


def _overrides(parameters: Mapping[str, Any]) -> list[str]:
    """The refusals the user overrode for this run (``allow_modality_mismatch``,
    ``allow_anatomy_mismatch``), so the audit shows who ran a model where its card says not to."""
    options = parameters.get("options") or {}
    return sorted(key for key, value in options.items() if key.startswith("allow_") and value)


def _card_parameters(card: object) -> dict[str, Any]:
    if not dataclasses.is_dataclass(card) or isinstance(card, type):
        return {}
    return {
        f.name: _json_safe(getattr(card, f.name))
        for f in dataclasses.fields(card)
        if f.name in _CARD_PARAMETER_FIELDS
    }


def _json_safe(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)

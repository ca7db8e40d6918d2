"""ORM rows -> records: the only place that knows both shapes (rows never leave the package)."""

from __future__ import annotations

from typing import Any

from meddiag_desktop.db.records import (
    CaseStatus,
    CaseSummary,
    MaskGeometry,
    MaskRecord,
    ModelRun,
    ReviewedMask,
    ReviewStatus,
    RunOutcome,
    SeriesRecord,
    StoredFinding,
    User,
    UserRole,
)
from meddiag_desktop.db.schema import (
    CaseRow,
    FindingRow,
    MaskRow,
    ModelRunRow,
    PatientRow,
    ReviewedMaskRow,
    SeriesRow,
    StudyRow,
    UserRow,
)
from meddiag_desktop.domain import (
    Finding,
    FindingSource,
    ScanMetadata,
    SeriesKind,
    matrix3,
    vector3,
)


def finding_values(finding: Finding) -> dict[str, Any]:
    """The finding columns of a Finding (everything but ids, source and review state)."""
    x0, y0, z0, x1, y1, z1 = (int(v) for v in finding.bbox_index_xyz)
    return {
        "number": int(finding.finding_id),
        "label": int(finding.label),
        "label_name": finding.label_name,
        "volume_ml": float(finding.volume_ml),
        "long_axis_mm": float(finding.long_axis_mm),
        "short_axis_mm": float(finding.short_axis_mm),
        "centroid_x_mm": float(finding.centroid_lps_mm[0]),
        "centroid_y_mm": float(finding.centroid_lps_mm[1]),
        "centroid_z_mm": float(finding.centroid_lps_mm[2]),
        "centroid_index_x": float(finding.centroid_index_xyz[0]),
        "centroid_index_y": float(finding.centroid_index_xyz[1]),
        "centroid_index_z": float(finding.centroid_index_xyz[2]),
        "bbox_min_x": x0,
        "bbox_min_y": y0,
        "bbox_min_z": z0,
        "bbox_max_x": x1,
        "bbox_max_y": y1,
        "bbox_max_z": z1,
        "voxel_count": int(finding.voxel_count),
        "mean_intensity": float(finding.mean_intensity),
        "max_intensity": float(finding.max_intensity),
        "mean_probability": float(finding.mean_probability),
        "max_probability": float(finding.max_probability),
    }


def finding_from_values(values: dict[str, Any], source: FindingSource) -> Finding:
    return Finding(
        finding_id=int(values["number"]),
        label=int(values["label"]),
        label_name=str(values["label_name"]),
        volume_ml=float(values["volume_ml"]),
        long_axis_mm=float(values["long_axis_mm"]),
        short_axis_mm=float(values["short_axis_mm"]),
        centroid_lps_mm=vector3(
            (values["centroid_x_mm"], values["centroid_y_mm"], values["centroid_z_mm"])
        ),
        centroid_index_xyz=vector3(
            (values["centroid_index_x"], values["centroid_index_y"], values["centroid_index_z"])
        ),
        bbox_index_xyz=(
            int(values["bbox_min_x"]),
            int(values["bbox_min_y"]),
            int(values["bbox_min_z"]),
            int(values["bbox_max_x"]),
            int(values["bbox_max_y"]),
            int(values["bbox_max_z"]),
        ),
        voxel_count=int(values["voxel_count"]),
        mean_intensity=float(values["mean_intensity"]),
        max_intensity=float(values["max_intensity"]),
        mean_probability=float(values["mean_probability"]),
        max_probability=float(values["max_probability"]),
        source=source,
    )


def stored_finding(row: FindingRow) -> StoredFinding:
    values = {name: getattr(row, name) for name in _FINDING_COLUMNS}
    return StoredFinding(
        finding_pk=row.id,
        case_id=row.case_fk,
        run_id=row.run_fk,
        finding=finding_from_values(values, FindingSource(row.source)),
        review_status=ReviewStatus(row.review_status),
    )


def case_summary(
    case: CaseRow, patient: PatientRow, study: StudyRow, series: SeriesRow
) -> CaseSummary:
    return CaseSummary(
        case_id=case.id,
        status=CaseStatus(case.status),
        patient_name=patient.name,
        patient_id=patient.dicom_patient_id,
        patient_birth_date=patient.birth_date,
        patient_sex=patient.sex,
        study_date=case.study_date,
        modality=case.modality,
        study_description=study.description,
        series_description=series.description,
        series_uid=series.series_uid,
        imported_at=case.created_at,
        updated_at=case.updated_at,
    )


def series_record(series: SeriesRow, study: StudyRow, patient: PatientRow) -> SeriesRecord:
    metadata = ScanMetadata(
        modality=series.modality,
        patient_name=patient.name,
        patient_id=patient.dicom_patient_id,
        patient_birth_date=patient.birth_date,
        patient_sex=patient.sex,
        study_uid=study.study_uid,
        series_uid=series.series_uid,
        study_date=study.study_date.strftime("%Y%m%d") if study.study_date else "",
        series_date=series.series_date,
        study_description=study.description,
        series_description=series.description,
        series_number=series.series_number,
        institution=study.institution,
        manufacturer=series.manufacturer,
        manufacturer_model=series.manufacturer_model,
        body_part_examined=series.body_part,
    )
    try:
        kind = SeriesKind(series.kind)
    except ValueError:
        kind = SeriesKind.VOLUME
    return SeriesRecord(
        series_id=series.id,
        key=series.series_key,
        kind=kind,
        metadata=metadata,
        size_xyz=(series.size_x, series.size_y, series.size_z),
        spacing_xyz_mm=(series.spacing_x_mm, series.spacing_y_mm, series.spacing_z_mm),
        location=series.location,
        files=tuple(str(f) for f in series.files or ()),
        fingerprint=series.fingerprint,
        files_bytes=series.files_bytes,
    )


def geometry_to_json(geometry: MaskGeometry) -> dict[str, list[Any]]:
    return {
        "size_xyz": list(geometry.size_xyz),
        "spacing_xyz_mm": list(geometry.spacing_xyz_mm),
        "origin_lps_mm": list(geometry.origin_lps_mm),
        "direction_lps": list(geometry.direction_lps),
    }


def geometry_from_json(data: dict[str, Any]) -> MaskGeometry:
    x, y, z = (int(v) for v in data["size_xyz"])
    return MaskGeometry(
        size_xyz=(x, y, z),
        spacing_xyz_mm=vector3(data["spacing_xyz_mm"]),
        origin_lps_mm=vector3(data["origin_lps_mm"]),
        direction_lps=matrix3(data["direction_lps"]),
    )


def mask_record(row: MaskRow | ReviewedMaskRow) -> MaskRecord:
    return MaskRecord(
        mask_id=row.id,
        relative_path=row.relative_path,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        geometry=geometry_from_json(row.geometry),
        label_names={int(k): str(v) for k, v in (row.label_names or {}).items()},
    )


def reviewed_mask(row: ReviewedMaskRow, author: str) -> ReviewedMask:
    return ReviewedMask(
        reviewed_mask_id=row.id,
        case_id=row.case_fk,
        run_id=row.run_fk,
        author=author,
        created_at=row.created_at,
        mask=mask_record(row),
    )


def model_run(
    row: ModelRunRow, findings: tuple[StoredFinding, ...] = (), mask: MaskRecord | None = None
) -> ModelRun:
    return ModelRun(
        run_id=row.id,
        case_id=row.case_fk,
        model_name=row.model_name,
        model_version=row.model_version,
        model_sha256=row.model_sha256,
        provider=row.provider,
        provider_attempts=tuple((str(p), str(w)) for p, w in row.provider_attempts or ()),
        parameters=dict(row.parameters or {}),
        timings_s={str(k): float(v) for k, v in (row.timings_s or {}).items()},
        warnings=tuple(str(w) for w in row.warnings or ()),
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=RunOutcome(row.outcome),
        error=row.error,
        actor=row.actor,
        findings=findings,
        mask=mask,
    )


def user(row: UserRow) -> User:
    return User(
        user_id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=UserRole(row.role),
        active=row.active,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
    )


_FINDING_COLUMNS = (
    "number",
    "label",
    "label_name",
    "volume_ml",
    "long_axis_mm",
    "short_axis_mm",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "centroid_index_x",
    "centroid_index_y",
    "centroid_index_z",
    "bbox_min_x",
    "bbox_min_y",
    "bbox_min_z",
    "bbox_max_x",
    "bbox_max_y",
    "bbox_max_z",
    "voxel_count",
    "mean_intensity",
    "max_intensity",
    "mean_probability",
    "max_probability",
)

"""A review outcome on the demo case, built without the database, for the writers' tests.

The demo phantom's three ground-truth nodules stand in for a model's findings: the first is
accepted, the second edited (its outline eroded, measured again), the third rejected (so it is
absent), and a sphere the "radiologist" drew beside the first is kept as a manual finding.
``meddiag_desktop.export`` builds the same object from a stored case; its own tests go through
the database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from meddiag_desktop.demo.case import write_demo_case
from meddiag_desktop.domain import FindingSource
from meddiag_desktop.inference.findings import extract_findings, label_components
from meddiag_desktop.reports.review_outcome import (
    AuditLine,
    KeptDecision,
    LesionRegion,
    ModelSummary,
    ReportedFinding,
    ReviewOutcome,
)
from meddiag_desktop.scans import load

SIGNED_AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _region(component_zyx: np.ndarray) -> LesionRegion:
    where = ndimage.find_objects(component_zyx.astype(np.uint8))[0]
    start = tuple(int(s.start) for s in where)
    return LesionRegion(start, component_zyx[where].copy())  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def demo_case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_case(tmp_path_factory.mktemp("demo_case")).folder


@pytest.fixture(scope="session")
def demo_outcome(demo_case_dir: Path) -> ReviewOutcome:
    """Signed review of the demo case: accepted, edited and manual findings kept, one rejected."""
    dicom = demo_case_dir / "dicom"
    scan = load(dicom)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_case_dir / "ground_truth.nii.gz")))
    truth = (truth > 0).astype(np.uint8)
    names = {1: "nodule"}
    cleaned, found = extract_findings(scan, truth, truth.astype(np.float32) * 0.9, names, 0.0)
    assert len(found) >= 3, "the demo phantom has fewer nodules than the fixture needs"
    components, _ = label_components(cleaned, 1)
    kept: list[ReportedFinding] = []
    decisions = [KeptDecision.ACCEPTED, KeptDecision.EDITED, None]
    for number, (finding, decision) in enumerate(zip(found, decisions, strict=False), start=1):
        x, y, z = (round(v) for v in finding.centroid_index_xyz)
        component = components == components[z, y, x]
        if decision is None:
            continue  # rejected: in no output
        if decision is KeptDecision.EDITED:
            component = ndimage.binary_erosion(component) | _centre(component)
            _, (remeasured,) = extract_findings(
                scan, component.astype(np.uint8), component * np.float32(0.9), names, 0.0
            )
            finding = replace(remeasured, finding_id=finding.finding_id)
        kept.append(_reported(number, finding, decision, component))
    drawn = _sphere_beside(cleaned, found[0].centroid_index_xyz)
    _, (manual,) = extract_findings(scan, drawn.astype(np.uint8), drawn * np.float32(0), names, 0.0)
    manual = replace(manual, finding_id=len(found) + 1, source=FindingSource.MANUAL)
    kept.append(_reported(len(found) + 1, manual, KeptDecision.MANUAL, drawn))
    return ReviewOutcome(
        case_id=1,
        scan=scan,
        source_files=tuple(sorted(dicom.glob("*.dcm"))),
        findings=tuple(kept),
        label_names=names,
        label_colours={1: "#ff5050"},
        model=ModelSummary(
            name="demo-lung-nodules",
            version="1.0.0",
            sha256="0" * 64,
            provider="CPUExecutionProvider",
            intended_use="Demonstration only: finds solid nodules in the synthetic chest phantom.",
            run_id=1,
            run_finished_at=SIGNED_AT,
        ),
        signed_by="dr_demo",
        signed_at=SIGNED_AT,
        exported_by="dr_demo",
        exported_at=SIGNED_AT,
        audit=(
            AuditLine(SIGNED_AT, "dr_demo", "case.imported", "case imported"),
            AuditLine(SIGNED_AT, "dr_demo", "run.saved", "demo-lung-nodules found 4 nodules"),
            AuditLine(SIGNED_AT, "dr_demo", "case.signed", "signed with 3 findings kept"),
        ),
    )


def _reported(
    number: int, finding, decision: KeptDecision, component: np.ndarray
) -> ReportedFinding:
    return ReportedFinding(
        number=number,
        finding_pk=100 + number,
        tracking_uid=f"1.2.826.0.1.3680043.10.1434.{number}",
        finding=finding,
        decision=decision,
        decided_by="dr_demo",
        decided_at=SIGNED_AT,
        region=_region(component),
    )


def _sphere_beside(labels: np.ndarray, centre_xyz, offset_voxels: int = 25) -> np.ndarray:
    """A 4-voxel-radius ball next to a nodule, on empty voxels: the manual lesion."""
    x, y, z = (round(v) for v in centre_xyz)
    zz, yy, xx = np.ogrid[: labels.shape[0], : labels.shape[1], : labels.shape[2]]
    for dx in (offset_voxels, -offset_voxels):
        ball = (zz - z) ** 2 + (yy - y) ** 2 + (xx - x - dx) ** 2 <= 16
        if not (ball & (labels > 0)).any():
            return ball
    raise AssertionError("no empty place beside the nodule for the manual lesion")


def _centre(component: np.ndarray) -> np.ndarray:
    """The component's central voxel, so an eroded small nodule keeps at least one voxel."""
    out = np.zeros_like(component)
    z, y, x = (round(c) for c in ndimage.center_of_mass(component))
    out[z, y, x] = component[z, y, x]
    return out


@pytest.fixture(scope="session")
def draft_outcome(demo_outcome: ReviewOutcome) -> ReviewOutcome:
    """The same review, not signed: every output must say DRAFT."""
    return replace(demo_outcome, signed_by=None, signed_at=None)

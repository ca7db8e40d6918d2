"""The DICOM SEG and TID 1500 SR of a review, written to files and read back (issue 10, item 2).

Nothing is trusted from the writer's side: the files are opened with pydicom and highdicom and
compared with the source series' own files (geometry), with the review outcome (findings,
measurements, who signed) and with the phantom's ground truth (the rejected nodule is nowhere).
Both files go through dicom3tools' ``dciodvfy``, an IOD validator independent of highdicom; its
output is kept under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from scipy import ndimage

from meddiag_desktop.domain import Volume
from meddiag_desktop.inference.findings import extract_findings
from meddiag_desktop.reports.dicom_seg import build_seg
from meddiag_desktop.reports.dicom_source import DicomOutputError
from meddiag_desktop.reports.dicom_sr import build_sr
from meddiag_desktop.reports.review_outcome import (
    KeptDecision,
    LesionRegion,
    ReportedFinding,
    ReviewOutcome,
)
from meddiag_desktop.scans import discover, load
from meddiag_desktop.scans.seg_reading import BY_UIDS, read_seg

DCIODVFY = "/usr/bin/dciodvfy"


@dataclass(frozen=True)
class Written:
    """One outcome's SEG and SR as files, and what pydicom and highdicom read back."""

    outcome: ReviewOutcome
    seg_path: Path
    sr_path: Path
    seg: Dataset  # pydicom
    sr: Dataset
    hd_seg: hd.seg.Segmentation
    hd_sr: hd.sr.Comprehensive3DSR


def _write(outcome: ReviewOutcome, folder: Path) -> Written:
    folder.mkdir(parents=True, exist_ok=True)
    seg = build_seg(outcome)
    sr = build_sr(outcome, seg)
    seg_path, sr_path = folder / "seg.dcm", folder / "sr.dcm"
    seg.save_as(seg_path)
    sr.save_as(sr_path)
    return Written(
        outcome,
        seg_path,
        sr_path,
        pydicom.dcmread(seg_path),
        pydicom.dcmread(sr_path),
        hd.seg.segread(seg_path),
        hd.sr.srread(sr_path),
    )


@pytest.fixture(scope="module")
def signed(demo_outcome: ReviewOutcome, tmp_path_factory: pytest.TempPathFactory) -> Written:
    return _write(demo_outcome, tmp_path_factory.mktemp("signed"))


@pytest.fixture(scope="module")
def draft(draft_outcome: ReviewOutcome, tmp_path_factory: pytest.TempPathFactory) -> Written:
    return _write(draft_outcome, tmp_path_factory.mktemp("draft"))


def _source_files(outcome: ReviewOutcome) -> dict[str, Dataset]:
    """The source series' files by SOP Instance UID, read here (not by the writer's module)."""
    headers = (pydicom.dcmread(p, stop_before_pixels=True) for p in outcome.source_files)
    return {str(ds.SOPInstanceUID): ds for ds in headers}


def _slice_index(scan: Volume, position: object) -> int:
    """The array slice a position lies on, from the scan's geometry."""
    direction = np.asarray(scan.direction_lps, dtype=float).reshape(3, 3)
    offset = np.asarray(position, dtype=float) - np.asarray(scan.origin_lps_mm)
    k = float(direction[:, 2] @ offset / scan.spacing_xyz_mm[2])
    assert abs(k - round(k)) < 1e-3, f"position {position} is between slices"
    return round(k)


def _frames(seg: Dataset) -> list[tuple[int, str, list[float]]]:
    """(segment number, source SOP Instance UID, ImagePositionPatient) of every frame."""
    out = []
    shared = seg.SharedFunctionalGroupsSequence[0]
    for item in seg.PerFrameFunctionalGroupsSequence:
        # A SEG of one segment may name it once, in the shared functional groups.
        identification = item.get("SegmentIdentificationSequence") or shared.get(
            "SegmentIdentificationSequence"
        )
        number = int(identification[0].ReferencedSegmentNumber)
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        out.append((number, str(source.ReferencedSOPInstanceUID), position))
    return out


# --- SEG: geometry ---------------------------------------------------------------------------


def test_seg_frames_sit_on_the_source_series_files(signed: Written) -> None:
    sources = _source_files(signed.outcome)
    first = next(iter(sources.values()))
    seg = signed.seg
    assert seg.SOPClassUID == pydicom.uid.SegmentationStorage
    assert seg.SegmentationType == "BINARY"
    for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                "StudyID", "AccessionNumber", "FrameOfReferenceUID"):
        assert seg[key].value == first[key].value, key
    assert seg.SeriesInstanceUID != first.SeriesInstanceUID
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == first.SeriesInstanceUID
    assert {str(i.ReferencedSOPInstanceUID) for i in referenced.ReferencedInstanceSequence} <= set(
        sources
    )
    shared = seg.SharedFunctionalGroupsSequence[0]
    np.testing.assert_allclose(
        [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing],
        [float(v) for v in first.PixelSpacing],
        atol=1e-9,
    )
    np.testing.assert_allclose(
        [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient],
        [float(v) for v in first.ImageOrientationPatient],
        atol=1e-9,
    )
    assert (seg.Rows, seg.Columns) == (first.Rows, first.Columns)
    frames = _frames(seg)
    assert frames
    for _, uid, position in frames:
        assert uid in sources, "a frame names an image that is not in the source series"
        np.testing.assert_allclose(
            position, [float(v) for v in sources[uid].ImagePositionPatient], atol=1e-6
        )


# --- SEG: the kept findings and nothing else --------------------------------------------------


def test_every_kept_finding_is_one_segment_with_its_voxels(signed: Written) -> None:
    outcome = signed.outcome
    shape = outcome.scan.shape_zyx
    sources = _source_files(outcome)
    segments = {int(item.SegmentNumber): item for item in signed.seg.SegmentSequence}
    assert sorted(segments) == list(range(1, len(outcome.findings) + 1))
    expected_type = {
        KeptDecision.ACCEPTED: "AUTOMATIC",
        KeptDecision.EDITED: "SEMIAUTOMATIC",
        KeptDecision.MANUAL: "MANUAL",
    }
    masks = {}
    for number, reported in enumerate(outcome.findings, start=1):
        item = segments[number]
        assert item.SegmentLabel == f"{reported.finding.label_name} #{reported.number}"
        assert item.TrackingUID == reported.tracking_uid
        assert item.TrackingID == reported.tracking_id
        assert item.SegmentAlgorithmType == expected_type[reported.decision]
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
        assert item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Nodule"
        if reported.decision is KeptDecision.MANUAL:
            assert "SegmentationAlgorithmIdentificationSequence" not in item
        else:
            algorithm = item.SegmentationAlgorithmIdentificationSequence[0]
            assert algorithm.AlgorithmName == outcome.model.name
            assert algorithm.AlgorithmVersion == outcome.model.version
            assert outcome.model.sha256 in algorithm.AlgorithmParameters
        masks[number] = reported.region.full(shape)

    pixels = signed.seg.pixel_array.reshape(-1, signed.seg.Rows, signed.seg.Columns)
    seen: set[tuple[int, int]] = set()
    for frame, (number, uid, _) in zip(pixels, _frames(signed.seg), strict=True):
        k = _slice_index(outcome.scan, sources[uid].ImagePositionPatient)
        np.testing.assert_array_equal(frame.astype(bool), masks[number][k], f"segment {number}")
        seen.add((number, k))
    # Empty frames are left out, and no non-empty one is.
    occupied = {(n, int(k)) for n, m in masks.items() for k in np.flatnonzero(m.any(axis=(1, 2)))}
    assert seen == occupied

    # highdicom reads the same segments back, by tracking UID.
    for number, reported in enumerate(outcome.findings, start=1):
        assert signed.hd_seg.get_segment_numbers(tracking_uid=reported.tracking_uid) == [number]


def test_the_rejected_nodule_is_in_neither_object(
    signed: Written, demo_case_dir: Path
) -> None:
    outcome = signed.outcome
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_case_dir / "ground_truth.nii.gz")))
    components, count = ndimage.label(truth > 0)
    kept = np.logical_or.reduce([r.region.full(outcome.scan.shape_zyx) for r in outcome.findings])
    rejected = [c for c in range(1, count + 1) if not (kept & (components == c)).any()]
    assert rejected, "the fixture should have rejected one nodule"
    labels = read_seg(signed.seg_path, outcome.source_files[0].parent).labels.array_zyx
    for c in rejected:
        assert not labels[components == c].any(), "a rejected nodule's voxels are in the SEG"
    # Nor its number, label or tracking UID anywhere in either file.
    kept_numbers = {r.number for r in outcome.findings}
    (missing,) = set(range(1, max(kept_numbers) + 1)) - kept_numbers
    for path in (signed.seg_path, signed.sr_path):
        data = path.read_bytes()
        assert f"#{missing}".encode() not in data
        assert f"finding {missing}".encode() not in data
        assert f"1434.{missing}\x00".encode() not in data
        assert f"1434.{missing} ".encode() not in data


# --- SR ---------------------------------------------------------------------------------------


def test_sr_holds_one_group_per_kept_finding_with_its_values(signed: Written) -> None:
    outcome = signed.outcome
    report = signed.hd_sr.content
    groups = report.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(outcome.findings)
    segment_of = {str(s.TrackingUID): int(s.SegmentNumber) for s in signed.seg.SegmentSequence}
    unit = {"volume": "ml", "long": "mm", "short": "mm", "attenuation": "[hnsf'U]"}
    for reported in outcome.findings:
        (group,) = report.get_volumetric_roi_measurement_groups(
            tracking_uid=reported.tracking_uid
        )
        assert group.tracking_identifier == reported.tracking_id
        assert group.finding_type.meaning == "Nodule"
        assert group.finding_sites[0].value.value == "816094009"  # Body Part Examined CHEST
        segment = group.referenced_segment
        assert segment.referenced_sop_instance_uid == signed.seg.SOPInstanceUID
        assert segment.referenced_segment_numbers == [segment_of[reported.tracking_uid]]
        values = {m.name.meaning.split()[0].lower(): m for m in group.get_measurements()}
        f = reported.finding
        expected = {
            "volume": f.volume_ml,
            "long": f.long_axis_mm,
            "short": f.short_axis_mm,
            "attenuation": f.mean_intensity,
        }
        for key, value in expected.items():
            assert values[key].value == pytest.approx(value, rel=1e-9, abs=1e-9), key
            assert values[key].unit.value == unit[key], key
        assert values["attenuation"].derivation.meaning == "Mean"
        if reported.manual:
            assert "certainty" not in values
        else:
            certainty = values["certainty"]
            assert certainty.value == pytest.approx(100 * f.mean_probability, rel=1e-9)
            assert certainty.unit.value == "%"
    assert outcome.reviewer == "dr_demo"
    (person,) = report.get_observer_contexts(observer_type=pydicom.sr.codedict.codes.DCM.Person)
    assert str(person.observer_identifying_attributes[0].value) == "dr_demo^"
    (device,) = report.get_observer_contexts(observer_type=pydicom.sr.codedict.codes.DCM.Device)
    names = {item.name.meaning: item.value for item in device.observer_identifying_attributes}
    assert names["Device Observer Name"] == outcome.model.name
    # The SEG is in the SR's evidence, so an archive sends both together.
    evidence = {
        str(i.ReferencedSOPInstanceUID)
        for study in signed.sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for i in series.ReferencedSOPSequence
    }
    assert signed.seg.SOPInstanceUID in evidence


# --- DRAFT and signed -------------------------------------------------------------------------


def test_draft_and_signed_are_told_apart(signed: Written, draft: Written) -> None:
    assert draft.seg.ContentLabel == "DRAFT"
    assert draft.seg.SeriesDescription.startswith("DRAFT")
    assert draft.seg.ContentDescription.startswith("DRAFT")
    assert draft.sr.SeriesDescription.startswith("DRAFT")
    assert (draft.sr.CompletionFlag, draft.sr.VerificationFlag, draft.sr.PreliminaryFlag) == (
        "PARTIAL",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    assert "VerifyingObserverSequence" not in draft.sr

    assert signed.seg.ContentLabel == "FINDINGS"
    for text in (signed.seg.SeriesDescription, signed.seg.ContentDescription,
                 signed.sr.SeriesDescription):
        assert "DRAFT" not in text
    assert (signed.sr.CompletionFlag, signed.sr.VerificationFlag, signed.sr.PreliminaryFlag) == (
        "COMPLETE",
        "VERIFIED",
        "FINAL",
    )
    (verifier,) = signed.sr.VerifyingObserverSequence
    assert str(verifier.VerifyingObserverName) == "dr_demo^"
    assert signed.outcome.signed_at is not None
    assert verifier.VerificationDateTime == signed.outcome.signed_at.strftime("%Y%m%d%H%M%S%z")

    for written in (signed, draft):
        for ds in (written.seg, written.sr):
            assert "not a medical device" in ds.SeriesDescription
            assert ds.ContentQualification == "RESEARCH"
        assert "not a medical device" in written.seg.ContentDescription


# --- Refusals -----------------------------------------------------------------------------------


def test_a_non_dicom_case_is_refused_with_the_reason(demo_outcome: ReviewOutcome) -> None:
    nifti = replace(
        demo_outcome,
        source_files=(),
        scan=replace(demo_outcome.scan, source="/data/case1.nii.gz"),
    )
    with pytest.raises(DicomOutputError, match=r"case1\.nii\.gz\).*no series for a DICOM SEG"):
        build_seg(nifti)


def test_a_review_with_nothing_kept_is_refused(demo_outcome: ReviewOutcome) -> None:
    with pytest.raises(DicomOutputError, match="has no kept finding"):
        build_seg(replace(demo_outcome, findings=()))


def test_a_resampled_series_is_refused(demo_outcome: ReviewOutcome) -> None:
    """A scan whose slices the loader resampled is not on its files' grid: no misplaced SEG."""
    x, y, z = demo_outcome.scan.spacing_xyz_mm
    resampled = replace(demo_outcome.scan, spacing_xyz_mm=(x, y, z * 0.75))
    with pytest.raises(DicomOutputError, match="does not lie on one slice of the scan's grid"):
        build_seg(replace(demo_outcome, scan=resampled))


def test_a_series_with_a_missing_file_is_refused(demo_outcome: ReviewOutcome) -> None:
    incomplete = replace(demo_outcome, source_files=demo_outcome.source_files[1:])
    with pytest.raises(DicomOutputError, match="no source file for slice"):
        build_seg(incomplete)


def test_an_sr_for_another_seg_is_refused(
    demo_outcome: ReviewOutcome, signed: Written
) -> None:
    only_first = build_seg(replace(demo_outcome, findings=demo_outcome.findings[:1]))
    later = ", ".join(f"#{r.number}" for r in demo_outcome.findings[1:])
    with pytest.raises(DicomOutputError, match=f"has no segment for kept finding {later}"):
        build_sr(demo_outcome, only_first)


# --- Validation by an independent validator ---------------------------------------------------


@pytest.mark.parametrize("kind", ["seg", "sr"])
def test_dciodvfy_reports_no_error(
    kind: str, signed: Written, draft: Written, artifacts_dir: Path
) -> None:
    if not Path(DCIODVFY).exists() and shutil.which("dciodvfy") is None:
        message = f"dciodvfy (dicom3tools) not found at {DCIODVFY}: the IODs are not validated"
        if os.environ.get("MEDDIAG_REQUIRE_DCIODVFY") == "1":
            pytest.fail(message)
        pytest.skip(message)
    validator = DCIODVFY if Path(DCIODVFY).exists() else str(shutil.which("dciodvfy"))
    report = []
    for written in (signed, draft):
        path = written.seg_path if kind == "seg" else written.sr_path
        run = subprocess.run(
            [validator, str(path)], capture_output=True, text=True, timeout=120, check=False
        )
        state = "DRAFT" if written is draft else "signed"
        report.append(f"# dciodvfy {path.name} ({state} review), exit {run.returncode}\n")
        report.append(run.stdout + run.stderr)
    text = "".join(report)
    (artifacts_dir / f"dciodvfy_{kind}.txt").write_text(text, encoding="utf-8")
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert not errors, "\n".join(errors)


# --- A scanner's headers ----------------------------------------------------------------------


def test_seg_on_a_real_ct_series_sits_on_its_files(
    sample_data: Path, demo_outcome: ReviewOutcome, tmp_path: Path
) -> None:
    """A synthetic finding on a real CT (3 slices of 512x512 from a scanner): the SEG's frames
    carry that scanner's positions and instance UIDs, and open back onto the same voxels."""
    folder = sample_data / "dicom" / "ct_3slice_with_seg"
    (series,) = [s for s in discover(folder) if s.loadable]
    scan = load(series)
    assert scan.shape_zyx == (3, 512, 512)
    zz, yy, xx = np.ogrid[:3, :512, :512]
    ball = (zz - 1) ** 2 * 4 + (yy - 250) ** 2 + (xx - 260) ** 2 <= 100
    (finding,) = extract_findings(
        scan, ball.astype(np.uint8), ball * np.float32(0.8), {1: "lesion"}, 0.0
    )[1]
    where = ndimage.find_objects(ball.astype(np.uint8))[0]
    start = tuple(int(s.start) for s in where)
    reported = ReportedFinding(
        number=1,
        finding_pk=1,
        tracking_uid="1.2.826.0.1.3680043.10.1434.99",
        finding=finding,
        decision=KeptDecision.ACCEPTED,
        decided_by="dr_demo",
        decided_at=datetime(2026, 12, 7, tzinfo=UTC),
        region=LesionRegion(start, ball[where].copy()),  # type: ignore[arg-type]
    )
    outcome = replace(
        demo_outcome,
        scan=scan,
        source_files=tuple(series.files),
        findings=(reported,),
        label_names={1: "lesion"},
    )
    seg = build_seg(outcome)
    sr = build_sr(outcome, seg)
    seg.save_as(tmp_path / "seg.dcm")
    sr.save_as(tmp_path / "sr.dcm")
    read_back = pydicom.dcmread(tmp_path / "seg.dcm")
    sources = _source_files(outcome)
    frames = _frames(read_back)
    assert len(frames) == 3
    for _, uid, position in frames:
        assert position == [float(v) for v in sources[uid].ImagePositionPatient]
    assert read_back.ReferencedSeriesSequence[0].SeriesInstanceUID == series.metadata.series_uid
    assert read_back.PatientID == next(iter(sources.values())).PatientID
    opened = read_seg(tmp_path / "seg.dcm", folder)
    assert opened.mapped_by == BY_UIDS
    np.testing.assert_array_equal(opened.labels.array_zyx > 0, ball)
    if Path(DCIODVFY).exists():
        for name in ("seg.dcm", "sr.dcm"):
            run = subprocess.run(
                [DCIODVFY, str(tmp_path / name)], capture_output=True, text=True, check=False
            )
            errors = [
                line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")
            ]
            assert not errors, (name, errors)


def test_a_name_outside_the_source_character_set_survives(
    draft_outcome: ReviewOutcome, tmp_path: Path
) -> None:
    """The demo series is ISO_IR 100 (Latin-1); a reviewer named outside it keeps their name."""
    written = _write(replace(draft_outcome, exported_by="dr_łukasz"), tmp_path)
    assert str(written.seg.ContentCreatorName) == "dr_łukasz^"
    (person,) = written.hd_sr.content.get_observer_contexts(
        observer_type=pydicom.sr.codedict.codes.DCM.Person
    )
    assert str(person.observer_identifying_attributes[0].value) == "dr_łukasz^"
    assert written.seg.PatientName == pydicom.dcmread(draft_outcome.source_files[0]).PatientName

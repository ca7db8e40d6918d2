"""DICOM SEG written by other tools: listed by ``meddiag scan``, converted on the grid of the
series it labels, refused (with the reason) when that series is absent or the grid differs.

The reference is dcmqi's liver SEG of a 3-slice CT with the label map dcmqi made from it
(``liver_seg.nrrd``); highdicom writes the SEGs of the demo phantom, with and without the
per-frame image references, so both ways of placing frames are exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from meddiag_desktop.cli import main
from meddiag_desktop.demo.case import write_demo_case
from meddiag_desktop.domain import SeriesKind
from meddiag_desktop.scans import ScanError, discover, load
from meddiag_desktop.scans.seg_reading import BY_POSITIONS, BY_UIDS, read_seg

CT_UID = "1.2.392.200103.20080913.113635.1.2009.6.22.21.43.10.23430.1"


@pytest.fixture(scope="module")
def dcmqi(sample_data: Path) -> tuple[Path, Path, Path]:
    """(the SEG, the CT folder it labels, dcmqi's own label map of it)."""
    refs = sample_data / "dicom" / "ct_3slice_with_seg_refs"
    seg, ct, nrrd = refs / "liver.dcm", sample_data / "dicom" / "ct_3slice_with_seg", None
    for folder in (refs, ct):
        if (folder / "liver_seg.nrrd").is_file():
            nrrd = folder / "liver_seg.nrrd"
    if not seg.is_file() or nrrd is None or not any(ct.glob("*.dcm")):
        pytest.skip("dcmqi's liver SEG sample (ct_3slice_with_seg[_refs]) is not there")
    return seg, ct, nrrd


def _together(tmp_path: Path, *files: Path) -> Path:
    """A folder holding links to ``files``: a SEG beside its series, as a PACS export has it."""
    folder = tmp_path / "study"
    folder.mkdir()
    for file in files:
        (folder / file.name).symlink_to(file)
    return folder


def _assert_same_image(written: Path, expected: Path) -> None:
    ours, theirs = sitk.ReadImage(str(written)), sitk.ReadImage(str(expected))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs))
    np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(ours.GetDirection(), theirs.GetDirection(), atol=1e-6)


def test_dcmqi_seg_converts_to_its_label_map(dcmqi, tmp_path: Path, capsys) -> None:
    seg, ct, nrrd = dcmqi
    out = tmp_path / "labels.nii.gz"
    assert main(["convert", str(seg), "--reference", str(ct), "--out", str(out)]) == 0
    _assert_same_image(out, nrrd)
    # The project's own loader reads it back on the CT's grid, the liver labelled 1.
    labels, scan = load(out), load(ct)
    assert labels.shape_zyx == scan.shape_zyx
    np.testing.assert_allclose(labels.origin_lps_mm, scan.origin_lps_mm, atol=1e-3)
    assert set(np.unique(labels.array_zyx)) == {0, 1}
    printed = capsys.readouterr().out
    assert "labels 1 Liver" in printed and BY_UIDS in printed


def test_seg_found_beside_its_series_defaults_to_its_own_folder(dcmqi, tmp_path: Path) -> None:
    seg, ct, nrrd = dcmqi
    folder = _together(tmp_path, seg, *sorted(ct.glob("*.dcm")))
    out = tmp_path / "labels.nii.gz"
    assert main(["convert", str(folder / seg.name), "--out", str(out)]) == 0
    _assert_same_image(out, nrrd)


def test_missing_reference_series_is_named(dcmqi, tmp_path: Path, capsys) -> None:
    seg, _ct, _nrrd = dcmqi
    other = tmp_path / "other"
    write_demo_case(other, shape_zyx=(8, 32, 32))
    out = tmp_path / "labels.nii.gz"
    code = main(["convert", str(seg), "--reference", str(other / "dicom"), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert CT_UID in error and "liver.dcm" in error and "not in" in error
    assert not out.exists()


def test_scan_lists_the_seg_with_the_series_it_labels(dcmqi, tmp_path: Path, capsys) -> None:
    seg, ct, _nrrd = dcmqi
    folder = _together(tmp_path, seg, *sorted(ct.glob("*.dcm")))
    assert main(["scan", str(folder), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    (entry,) = [s for s in listed if s["kind"] == SeriesKind.SEGMENTATION.value]
    assert entry["segmentation"] == {
        "referenced_series_uid": CT_UID,
        "reference_found": True,
        "reference_key": CT_UID,
        "segments": [{"number": 1, "label": "Liver"}],
    }
    assert entry["loadable"] is False  # not a volume of its own: an overlay
    assert main(["scan", str(seg)]) == 0
    printed = capsys.readouterr().out
    assert "segmentation" in printed and "segments: 1 Liver" in printed
    assert f"labels series: {CT_UID} (NOT found here)" in printed


# ---- SEGs written by highdicom on the demo phantom ----------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The demo case (small) and two overlapping segments drawn on it."""
    case = write_demo_case(tmp_path_factory.mktemp("demo"), shape_zyx=(24, 96, 96))
    scan = load(case.folder / "dicom")
    first = np.zeros(scan.shape_zyx, dtype=bool)
    first[5:15, 20:60, 30:70] = True
    second = np.zeros(scan.shape_zyx, dtype=bool)
    second[10:20, 50:80, 10:40] = True  # overlaps the first in 5 x 10 x 10 voxels
    return case.folder / "dicom", scan, first, second


def _segment(number: int, label: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )


def _write_seg(folder: Path, masks: list[np.ndarray], out: Path) -> Path:
    """A binary SEG by highdicom, frames in the sources' order (highdicom needs the datasets
    sorted as the mask's slices)."""
    sources = sorted(
        (pydicom.dcmread(p) for p in folder.glob("*.dcm")),
        key=lambda d: float(d.ImagePositionPatient[2]),
    )
    scan = load(folder)
    if scan.origin_lps_mm[2] > float(sources[-1].ImagePositionPatient[2]) - 1e-3:
        sources.reverse()
    stacked = np.stack(masks, axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stacked,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_segment(n, f"region {n}") for n in range(1, len(masks) + 1)],
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test bench",
        manufacturer_model_name="highdicom",
        software_versions=hd.__version__,
        device_serial_number="1",
        series_description="two regions",
    )
    seg.save_as(out)
    return out


def test_highdicom_seg_of_the_demo_case_round_trips(demo, tmp_path: Path) -> None:
    folder, _scan, first, _second = demo
    seg_file = _write_seg(folder, [first], tmp_path / "seg.dcm")
    read = read_seg(seg_file, folder)
    assert read.mapped_by == BY_UIDS
    np.testing.assert_array_equal(read.labels.array_zyx, first.astype(np.uint8))
    assert read.label_names == {1: "region 1"}
    assert read.source_note == "from DICOM SEG seg.dcm (two regions, test bench)"
    assert read.warnings == ()


def test_overlapping_segments_go_to_the_higher_number_and_say_so(demo, tmp_path: Path) -> None:
    folder, _scan, first, second = demo
    read = read_seg(_write_seg(folder, [first, second], tmp_path / "seg.dcm"), folder)
    expected = np.zeros(first.shape, dtype=np.uint8)
    expected[first] = 1
    expected[second] = 2
    np.testing.assert_array_equal(read.labels.array_zyx, expected)
    (warning,) = read.warnings
    assert "segments 1 (region 1) and 2 (region 2) overlap in 500 voxel(s)" in warning


def _without_image_references(seg_file: Path, out: Path, shift_mm: float = 0.0) -> Path:
    """The SEG with no per-frame source image (and no referenced instance) left, so only the
    frame positions place it; ``shift_mm`` moves every frame along the slice normal."""
    ds = pydicom.dcmread(seg_file)
    for frame in ds.PerFrameFunctionalGroupsSequence:
        del frame.DerivationImageSequence
        position = frame.PlanePositionSequence[0].ImagePositionPatient
        position[2] = float(position[2]) + shift_mm
    for item in ds.ReferencedSeriesSequence:
        del item.ReferencedInstanceSequence
    ds.save_as(out)
    return out


def test_frames_without_image_references_are_placed_by_position(demo, tmp_path: Path) -> None:
    folder, _scan, first, second = demo
    made = _write_seg(folder, [first, second], tmp_path / "seg.dcm")
    by_uids = read_seg(made, folder)
    stripped = _without_image_references(made, tmp_path / "by_position.dcm")
    by_positions = read_seg(stripped, folder)
    assert by_positions.mapped_by == BY_POSITIONS
    np.testing.assert_array_equal(by_positions.labels.array_zyx, by_uids.labels.array_zyx)


def test_frames_between_slices_are_refused_not_resampled(demo, tmp_path: Path) -> None:
    folder, scan, first, _second = demo
    made = _write_seg(folder, [first], tmp_path / "seg.dcm")
    half = scan.spacing_xyz_mm[2] / 2
    shifted = _without_image_references(made, tmp_path / "shifted.dcm", shift_mm=half)
    with pytest.raises(ScanError, match=r"on no slice of series .*not resampled"):
        read_seg(shifted, folder)


def test_frame_off_the_slice_it_names_is_refused(demo, tmp_path: Path) -> None:
    folder, _scan, first, _second = demo
    ds = pydicom.dcmread(_write_seg(folder, [first], tmp_path / "seg.dcm"))
    position = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
    position.ImagePositionPatient[2] = float(position.ImagePositionPatient[2]) + 0.5
    ds.save_as(tmp_path / "moved.dcm")
    with pytest.raises(ScanError, match=r"frame 1 names a slice .* off that slice"):
        read_seg(tmp_path / "moved.dcm", folder)


def test_other_pixel_spacing_is_refused(demo, tmp_path: Path) -> None:
    folder, scan, first, _second = demo
    ds = pydicom.dcmread(_write_seg(folder, [first], tmp_path / "seg.dcm"))
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    measures.PixelSpacing = [scan.spacing_xyz_mm[1] * 2, scan.spacing_xyz_mm[0] * 2]
    ds.save_as(tmp_path / "coarse.dcm")
    with pytest.raises(ScanError, match=r"pixel spacing .* another grid"):
        read_seg(tmp_path / "coarse.dcm", folder)


def test_a_scan_is_not_read_as_a_seg(demo, capsys) -> None:
    folder, *_ = demo
    first = sorted(folder.glob("*.dcm"))[0]
    with pytest.raises(ScanError, match="is not a DICOM segmentation"):
        read_seg(first)
    code = main(["convert", str(folder), "--reference", str(folder), "--out", "x.nii.gz"])
    assert code == 2
    assert "--reference is only for" in capsys.readouterr().err


def test_discovery_lists_a_seg_beside_its_series(demo, tmp_path: Path) -> None:
    folder, _scan, first, _second = demo
    seg_file = _write_seg(folder, [first], tmp_path / "seg.dcm")
    mixed = _together(tmp_path, seg_file, *sorted(folder.glob("*.dcm")))
    found = discover(mixed)
    (seg,) = [s for s in found if s.kind is SeriesKind.SEGMENTATION]
    (volume,) = [s for s in found if s.loadable]
    assert seg.segmentation is not None
    assert seg.segmentation.reference_key == volume.key
    assert seg.segmentation.segment_labels == ((1, "region 1"),)
    assert not volume.warnings  # the SEG is no stray file of the scan's

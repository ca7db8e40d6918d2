"""Round trip: the DICOM SEG this project exports (``reports.dicom_seg.build_seg``) opens the
way a SEG from any other tool does (``scans.seg_reading.read_seg``), voxel for voxel."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from meddiag_desktop.reports.review_outcome import ReviewOutcome
from meddiag_desktop.scans.seg_reading import BY_UIDS, read_seg

_WRITER = "meddiag_desktop.reports.dicom_seg"


# Skipped before the (slow) demo review fixture is built, while the writer is not there.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(_WRITER) is None,
    reason=f"{_WRITER} (build_seg, the SEG export) does not exist yet: nothing to read back",
)


def _saved(built: object, out: Path) -> Path:
    """The exported SEG as a file, whatever form build_seg hands it in."""
    if isinstance(built, (str, Path)):
        return Path(built)
    if isinstance(built, bytes):
        out.write_bytes(built)
        return out
    save_as = getattr(built, "save_as", None)
    assert callable(save_as), f"build_seg returned {type(built).__name__}, not a dataset"
    save_as(out)
    return out


def test_our_exported_seg_opens_back_to_the_kept_findings(
    demo_outcome: ReviewOutcome, demo_case_dir: Path, tmp_path: Path
) -> None:
    build_seg = importlib.import_module(_WRITER).build_seg
    seg_file = _saved(build_seg(demo_outcome), tmp_path / "seg.dcm")
    read = read_seg(seg_file, demo_case_dir / "dicom")
    assert read.mapped_by == BY_UIDS
    assert read.warnings == ()  # kept findings do not overlap
    labels = read.labels.array_zyx
    assert labels.shape == demo_outcome.scan.shape_zyx
    np.testing.assert_allclose(
        read.labels.origin_lps_mm, demo_outcome.scan.origin_lps_mm, atol=1e-3
    )
    shape = demo_outcome.scan.shape_zyx
    expected = [kept.region.full(shape) for kept in demo_outcome.findings]
    union = np.logical_or.reduce(expected)
    np.testing.assert_array_equal(labels > 0, union)
    # Each kept finding is one segment's voxels exactly (whichever number it was given).
    segments = {int(n): labels == n for n in np.unique(labels) if n}
    for mask in expected:
        number = int(np.bincount(labels[mask]).argmax())
        assert number in segments
        np.testing.assert_array_equal(segments[number] & mask, mask)

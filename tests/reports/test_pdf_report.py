"""The PDF report: real text, kept findings only, key images that show the lesion, pages that fit.

Pages are rendered to PNG under ``test-artifacts/`` (``report_page1.png``,
``report_key_images.png``, ``report_letter_page1.png``, ``report_many_findings_last.png``): look
at them after a change to the layout.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import pytest
import SimpleITK as sitk
from PIL import Image
from pypdf import PdfReader
from scipy import ndimage

from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.inference.findings import extract_findings
from meddiag_desktop.reports.key_images import (
    DEFAULT_CONTOUR_COLOUR,
    SCALE_BAR_COLOUR,
    render_key_image,
    scale_bar_length_mm,
)
from meddiag_desktop.reports.pdf_pages import FOOTER_HEIGHT, HEADER_HEIGHT, MARGIN
from meddiag_desktop.reports.pdf_report import write_pdf_report
from meddiag_desktop.reports.review_outcome import (
    NOT_A_MEDICAL_DEVICE,
    LesionRegion,
    ReportedFinding,
    ReviewOutcome,
)
from meddiag_desktop.scans import load

RENDER_SCALE = 2.0  # 144 dpi


def _pages_text(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def _flat(text: str) -> str:
    """Text without whitespace: a wrapped table cell reads the same."""
    return re.sub(r"\s+", "", text)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def _near(pixels: np.ndarray, colour: str, tolerance: int = 40) -> np.ndarray:
    return (np.abs(pixels[..., :3].astype(int) - _rgb(colour)) <= tolerance).all(axis=-1)


def _assert_nothing_outside(path: Path) -> None:
    """Every character and image lies on the page inside the margins; images in the frame."""
    pdf = pdfium.PdfDocument(str(path))
    for number in range(len(pdf)):
        page = pdf[number]
        width, height = page.get_size()
        text = page.get_textpage()
        for i in range(text.count_chars()):
            left, bottom, right, top = text.get_charbox(i)
            if right - left <= 0:
                continue  # spaces and line breaks have no box
            where = f"page {number + 1} char {text.get_text_range(i, 1)!r} at {left:.0f},{top:.0f}"
            assert left >= MARGIN - 0.5 and right <= width - MARGIN + 0.5, where
            assert bottom >= MARGIN - 3 and top <= height - MARGIN + 0.5, where
        for image in page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_IMAGE]):
            left, bottom, right, top = image.get_bounds()
            assert left >= MARGIN - 0.5 and right <= width - MARGIN + 0.5
            assert bottom >= MARGIN + FOOTER_HEIGHT - 0.5
            assert top <= height - MARGIN - HEADER_HEIGHT + 0.5


def _render(path: Path, page_index: int) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """Page pixels (RGB) and its images' boxes in those pixels (left, top, right, bottom)."""
    page = pdfium.PdfDocument(str(path))[page_index]
    _, height = page.get_size()
    pixels = np.asarray(page.render(scale=RENDER_SCALE).to_pil().convert("RGB"))
    boxes = [
        tuple(
            v * RENDER_SCALE
            for v in (left, height - top, right, height - bottom)  # PDF y grows upwards
        )
        for left, bottom, right, top in (
            image.get_bounds() for image in page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_IMAGE])
        )
    ]
    return pixels, boxes


def _save(pixels: np.ndarray, path: Path) -> None:
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def signed_pdf(demo_outcome: ReviewOutcome, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pdf_report(demo_outcome, tmp_path_factory.mktemp("pdf") / "report.pdf")


@pytest.fixture(scope="module")
def rejected_values(demo_case_dir: Path, demo_outcome: ReviewOutcome) -> list[str]:
    """The table values of the finding the fixture rejected (the phantom's third nodule)."""
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_case_dir / "ground_truth.nii.gz")))
    truth = (truth > 0).astype(np.uint8)
    _, found = extract_findings(demo_outcome.scan, truth, truth * np.float32(0.9), {1: "n"}, 0.0)
    rejected = found[2]
    assert all(r.number != 3 for r in demo_outcome.findings)
    x, y, z = rejected.centroid_lps_mm
    return [f"{x:.2f}", f"{y:.2f}", f"{z:.2f}", f"{rejected.volume_ml:.4f}"]


def test_text_is_searchable_and_holds_the_kept_findings(
    signed_pdf: Path, demo_outcome: ReviewOutcome, rejected_values: list[str]
) -> None:
    pages = _pages_text(signed_pdf)
    text = "\n".join(pages)
    flat = _flat(text)
    meta = demo_outcome.scan.metadata
    for value in (
        meta.patient_name,
        meta.patient_id,
        "1960-01-01",  # the birth date, as ISO
        meta.study_description,
        meta.series_description,
        meta.study_uid,
        meta.series_uid,
        "demo-lung-nodules",
        "1.0.0",
        "0" * 64,
        "CPUExecutionProvider",
        "Demonstration only: finds solid nodules",
        "Signed off",
        "2026-12-07 09:30 UTC",
        "dr_demo",
        "signed with 3 findings kept",  # the audit summary
        "Mean (HU)",
    ):
        assert _flat(value) in flat, value
    table = _flat(text[text.index("Findings (3 kept)") : text.index("Key images")])
    for reported in demo_outcome.findings:
        f = reported.finding
        x, y, z = f.centroid_lps_mm
        values = [
            f"{x:.2f}",
            f"{y:.2f}",
            f"{z:.2f}",
            f"{f.volume_ml:.4f}",
            f"{f.long_axis_mm:.2f}",
            f"{f.short_axis_mm:.2f}",
            f"{f.mean_intensity:.1f}",
            str(round(f.centroid_index_xyz[2]) + 1),
            reported.decision.value,
            reported.tracking_uid,
        ]
        values.append("—" if reported.manual else f"{f.mean_probability:.3f}")
        for value in values:
            assert value in table, (reported.number, value)
    # the rejected finding is in no part of the report
    assert not all(value in table for value in rejected_values[:3])
    assert rejected_values[3] not in flat
    assert "1.2.826.0.1.3680043.10.1434.3" not in flat and "#3" not in text
    for number, page in enumerate(pages, start=1):
        assert _flat(NOT_A_MEDICAL_DEVICE) in _flat(page), f"page {number} lacks the statement"
        assert f"Page {number} of {len(pages)}" in page
        assert "DRAFT" not in page
    assert PdfReader(signed_pdf).metadata.title == "MedDiag Desktop review report, case 1"


def test_draft_is_marked_on_every_page_and_in_the_title(
    draft_outcome: ReviewOutcome, tmp_path: Path, artifacts_dir: Path
) -> None:
    path = write_pdf_report(draft_outcome, tmp_path / "draft.pdf", page_size="Letter")
    reader = PdfReader(path)
    assert reader.metadata.title.startswith("DRAFT")
    assert [round(float(v)) for v in reader.pages[0].mediabox[2:]] == [612, 792]
    for number, page in enumerate(_pages_text(path), start=1):
        assert "DRAFT, NOT SIGNED" in page, f"page {number} is not marked DRAFT"
    assert "not signed (DRAFT)" in _pages_text(path)[0]
    _assert_nothing_outside(path)
    pixels, _ = _render(path, 0)
    _save(pixels, artifacts_dir / "report_letter_page1.png")


def test_key_images_show_the_contours_on_the_page(signed_pdf: Path, artifacts_dir: Path) -> None:
    pixels, boxes = _render(signed_pdf, 0)
    _save(pixels, artifacts_dir / "report_page1.png")
    key_pages = [i for i, text in enumerate(_pages_text(signed_pdf)) if "#1 nodule" in text]
    pixels, boxes = _render(signed_pdf, key_pages[0])
    _save(pixels, artifacts_dir / "report_key_images.png")
    assert boxes, "no key image on the page that captions finding 1"
    contour = _near(pixels, DEFAULT_CONTOUR_COLOUR)
    inside = np.zeros_like(contour)
    for left, top, right, bottom in boxes:
        inside[int(top) : int(bottom) + 1, int(left) : int(right) + 1] = True
    assert (contour & inside).sum() > 100, "no contour colour in the key images"
    assert not (contour & ~inside).any(), "contour colour drawn outside the images"


def test_key_image_contour_sits_on_the_finding_with_a_true_scale_bar(
    demo_outcome: ReviewOutcome,
) -> None:
    reported = demo_outcome.findings[0]
    image = render_key_image(demo_outcome, reported)
    pixels = np.asarray(Image.open(io.BytesIO(image.png)).convert("RGB"))
    assert image.window.name == "Lung"  # a chest CT nodule
    assert image.on_centroid
    zoom = image.panels[1]
    left, top, right, bottom = zoom.box_px
    region = pixels[int(top) : int(bottom), int(left) : int(right)]
    field_left, field_right, field_top, _ = zoom.field_mm
    mm_per_px = (field_right - field_left) / (right - left)

    rows, columns = np.nonzero(_near(region, DEFAULT_CONTOUR_COLOUR))
    centre_x = field_left + columns.mean() * mm_per_px
    centre_y = field_top + rows.mean() * mm_per_px
    x, y, _ = reported.finding.centroid_index_xyz
    spacing_x, spacing_y, _ = demo_outcome.scan.spacing_xyz_mm
    assert centre_x == pytest.approx((x + 0.5) * spacing_x, abs=1.5)  # identity direction
    assert centre_y == pytest.approx((y + 0.5) * spacing_y, abs=1.5)
    across = (columns.max() - columns.min()) * mm_per_px
    assert across == pytest.approx(reported.finding.long_axis_mm, rel=0.25)

    bar = _near(region, SCALE_BAR_COLOUR, tolerance=10)
    longest = max(_longest_run(row) for row in bar)
    assert longest * mm_per_px == pytest.approx(zoom.scale_bar_mm, abs=2 * mm_per_px)
    assert zoom.scale_bar_mm == scale_bar_length_mm(field_right - field_left)


def _longest_run(row: np.ndarray) -> int:
    padded = np.concatenate(([0], row.astype(np.int8), [0]))
    changes = np.flatnonzero(np.diff(padded))
    return int((changes[1::2] - changes[::2]).max()) if changes.size else 0


def test_scale_bar_lengths_are_round_and_a_quarter_at_most() -> None:
    assert [scale_bar_length_mm(w) for w in (40, 345.6, 9, 1000)] == [10, 50, 2, 200]


def test_key_image_is_the_same_for_a_scan_stored_right_to_left(
    demo_outcome: ReviewOutcome,
) -> None:
    """Orientation comes from the direction matrix: a flipped storage order shows the same."""
    flipped = _stored_right_to_left(demo_outcome)
    for original, mirrored in zip(demo_outcome.findings, flipped.findings, strict=True):
        a = render_key_image(demo_outcome, original)
        b = render_key_image(flipped, mirrored)
        assert (a.view.flip_rows, a.view.flip_columns) == (False, False)
        assert (b.view.flip_rows, b.view.flip_columns) == (True, True)
        pixels_a = np.asarray(Image.open(io.BytesIO(a.png)).convert("RGB")).astype(int)
        pixels_b = np.asarray(Image.open(io.BytesIO(b.png)).convert("RGB")).astype(int)
        assert np.abs(pixels_a - pixels_b).mean() < 0.5


def _stored_right_to_left(outcome: ReviewOutcome) -> ReviewOutcome:
    scan = outcome.scan
    _, ny, nx = scan.shape_zyx
    mirrored = Volume(
        np.ascontiguousarray(scan.array_zyx[:, ::-1, ::-1]),
        scan.spacing_xyz_mm,
        scan.index_to_lps((nx - 1, ny - 1, 0)),
        (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0),
        scan.metadata,
    )
    findings = []
    for reported in outcome.findings:
        z0, y0, x0 = reported.region.start_zyx
        _, dy, dx = reported.region.mask_zyx.shape
        region = LesionRegion(
            (z0, ny - y0 - dy, nx - x0 - dx), reported.region.mask_zyx[:, ::-1, ::-1].copy()
        )
        x, y, z = reported.finding.centroid_index_xyz
        finding = replace(reported.finding, centroid_index_xyz=(nx - 1 - x, ny - 1 - y, z))
        findings.append(replace(reported, finding=finding, region=region))
    return replace(outcome, scan=mirrored, findings=tuple(findings))


def test_markup_in_names_is_escaped_and_long_text_wraps(
    demo_outcome: ReviewOutcome, tmp_path: Path
) -> None:
    long_description = " ".join(["Thorax low-dose follow-up with contrast"] * 20)
    meta = replace(
        demo_outcome.scan.metadata,
        patient_name="O'BRIEN & <SONS>^Ana<b>^Zoë",
        series_description=long_description,
        institution="X" * 300,  # one long word: must be split, not run off the page
    )
    outcome = replace(
        demo_outcome,
        scan=replace(demo_outcome.scan, metadata=meta),
        model=None,
        warnings=("Slice spacing is uneven: resampled to 2.00 mm.",),
    )
    for size in ("A4", "Letter"):
        path = write_pdf_report(outcome, tmp_path / f"escaped_{size}.pdf", page_size=size)
        text = "\n".join(_pages_text(path))
        assert "O'BRIEN & <SONS>, Ana<b> Zoë" in text
        assert _flat(long_description) in _flat(text)
        assert _flat("No model was run on this case: every finding is manual") in _flat(text)
        assert "Slice spacing is uneven" in text
        _assert_nothing_outside(path)


def test_unknown_page_size_is_refused(demo_outcome: ReviewOutcome, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="A4, Letter"):
        write_pdf_report(demo_outcome, tmp_path / "x.pdf", page_size="A5")
    assert not (tmp_path / "x.pdf").exists()


def _many(outcome: ReviewOutcome, count: int) -> ReviewOutcome:
    """``count`` kept findings, made by repeating the fixture's under new numbers."""
    findings = []
    for number in range(1, count + 1):
        source: ReportedFinding = outcome.findings[(number - 1) % len(outcome.findings)]
        findings.append(
            replace(
                source,
                number=number,
                tracking_uid=f"1.2.826.0.1.3680043.10.1434.99{number:03d}",
                finding=replace(source.finding, finding_id=number),
            )
        )
    return replace(outcome, findings=tuple(findings))


@pytest.mark.parametrize("size", ["A4", "Letter"])
def test_many_findings_flow_onto_more_pages_and_fit(
    demo_outcome: ReviewOutcome, tmp_path: Path, artifacts_dir: Path, size: str
) -> None:
    outcome = _many(demo_outcome, 25)
    path = write_pdf_report(outcome, tmp_path / "many.pdf", page_size=size)
    pages = _pages_text(path)
    assert len(pages) >= 10  # 25 key images cannot share a few pages
    flat = _flat("\n".join(pages))
    for reported in outcome.findings:
        assert reported.tracking_uid in flat
        assert f"#{reported.number}nodule" in flat
    text = "\n".join(pages)
    table = text[text.index("Findings (25 kept)") : text.index("Key images")]
    for reported in outcome.findings:  # number, label and slice: the row's first cells
        row_start = f"{reported.number}nodule{round(reported.finding.centroid_index_xyz[2]) + 1}"
        assert row_start in _flat(table), reported.number
    _assert_nothing_outside(path)
    if size == "A4":
        pixels, _ = _render(path, len(pages) - 1)
        _save(pixels, artifacts_dir / "report_many_findings_last.png")


def test_mr_key_image_uses_a_percentile_window(demo_outcome: ReviewOutcome) -> None:
    meta: ScanMetadata = replace(demo_outcome.scan.metadata, modality="MR")
    mr = replace(demo_outcome, scan=replace(demo_outcome.scan, metadata=meta))
    image = render_key_image(mr, mr.findings[0])
    assert image.window.name.startswith("Auto (1-99")


def test_report_of_a_real_ct_without_a_model(
    sample_data: Path, demo_outcome: ReviewOutcome, tmp_path: Path, artifacts_dir: Path
) -> None:
    """dcmqi's liver outline on its 3-slice CT, kept as a manual finding: a scanner's own
    geometry, no model, and an abdomen (soft-tissue window)."""
    scan = load(sample_data / "dicom" / "ct_3slice_with_seg")
    liver = sitk.ReadImage(
        str(sample_data / "dicom" / "ct_3slice_with_seg_refs" / "liver_seg.nrrd")
    )
    parts, _ = ndimage.label(sitk.GetArrayFromImage(liver) > 0)
    assert parts.shape == scan.shape_zyx
    mask = parts == np.bincount(parts.ravel())[1:].argmax() + 1  # the largest piece
    _, (finding,) = extract_findings(
        scan, mask.astype(np.uint8), mask * np.float32(0), {1: "liver"}, 0.0
    )
    source = demo_outcome.findings[-1]  # the manual one
    outcome = replace(
        demo_outcome,
        scan=scan,
        findings=(
            replace(
                source,
                number=1,
                finding=replace(finding, source=source.finding.source),
                region=LesionRegion((0, 0, 0), mask),
            ),
        ),
        model=None,
        label_names={1: "liver"},
    )
    path = write_pdf_report(outcome, tmp_path / "real.pdf")
    text = _flat("\n".join(_pages_text(path)))
    assert _flat(scan.metadata.series_uid) in text and _flat("No model was run") in text
    _assert_nothing_outside(path)
    page = next(i for i, t in enumerate(_pages_text(path)) if "#1 liver" in t)
    pixels, boxes = _render(path, page)
    _save(pixels, artifacts_dir / "report_real_ct_key_image.png")
    assert boxes and _near(pixels, DEFAULT_CONTOUR_COLOUR).sum() > 100
